//! [`DocumentUrl`]: a `client_id` that is a metadata document's URL (draft §3): https, a host,
//! a path other than `/`, no query, and the canonical form a [`RedirectUri`] must have (no
//! userinfo, fragment, dot segments, encoded dots or slashes, internationalized or
//! non-canonical host).

use std::net::IpAddr;

use url::Host;

use super::DocumentError;
use crate::oauth::redirect::RedirectUri;

/// Whether `client_id` is meant as a metadata document's URL: it starts with `https://`. No
/// other client id does (generated ids are `c_…`, agents' slugs have no `:`), as draft §6.9
/// asks.
pub(crate) fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// A metadata document's URL, checked.
#[derive(Debug, Clone)]
pub(crate) struct DocumentUrl {
    uri: RedirectUri,
}

impl DocumentUrl {
    /// Checks `text` as a document URL.
    pub(crate) fn parse(text: &str) -> Result<Self, DocumentError> {
        let uri =
            RedirectUri::parse(text).map_err(|error| DocumentError::Url(error.to_string()))?;
        let url = uri.url();
        if url.scheme() != "https" {
            return Err(DocumentError::Url("it must be an https URL".into()));
        }
        if url.path() == "/" {
            return Err(DocumentError::Url("it must have a path".into()));
        }
        if url.query().is_some() {
            return Err(DocumentError::Url("it may not have a query".into()));
        }
        Ok(Self { uri })
    }

    /// The URL exactly as the client wrote it: the `client_id`, and what the document's
    /// `client_id` must equal.
    pub(crate) fn as_str(&self) -> &str {
        self.uri.as_str()
    }

    /// The host as a name (for DNS and TLS), or `None` for an address.
    pub(crate) fn name(&self) -> Option<&str> {
        match self.uri.url().host() {
            Some(Host::Domain(name)) => Some(name),
            _ => None,
        }
    }

    /// The host if it is an address.
    pub(crate) fn address(&self) -> Option<IpAddr> {
        match self.uri.url().host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        }
    }

    /// The port, 443 unless another is written.
    pub(crate) fn port(&self) -> u16 {
        self.uri.url().port_or_known_default().unwrap_or(443)
    }

    /// The host and, when it is not 443, the port: the `Host` header, and what the consent
    /// page shows the person as the client's identity.
    pub(crate) fn authority(&self) -> String {
        let host = self.uri.host();
        match self.uri.url().port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The path: what is requested.
    pub(crate) fn path(&self) -> &str {
        self.uri.url().path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        matches!(DocumentUrl::parse(text), Err(DocumentError::Url(_)))
    }

    #[test]
    fn a_document_url_is_https_with_a_path() {
        let url = DocumentUrl::parse("https://app.example.com/oauth/client.json").unwrap();
        assert_eq!(url.as_str(), "https://app.example.com/oauth/client.json");
        assert_eq!(url.name(), Some("app.example.com"));
        assert_eq!(url.port(), 443);
        assert_eq!(url.authority(), "app.example.com");
        assert_eq!(url.path(), "/oauth/client.json");
        let url = DocumentUrl::parse("https://127.0.0.1:8443/c").unwrap();
        assert_eq!(url.address(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(url.name(), None);
        assert_eq!(url.authority(), "127.0.0.1:8443");
        assert_eq!(url.port(), 8443);
    }

    #[test]
    fn what_a_document_url_may_not_be() {
        for text in [
            "http://app.example.com/client.json",
            "http://127.0.0.1/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/c?x=1",
            "https://app.example.com/c#x",
            "https://user@app.example.com/c",
            "https://app.example.com/a/../c",
            "https://app.example.com/a/%2e%2e/c",
            "https://xn--pple-43d.com/c",
            "https://app.example.com:0443/c",
            "https:app.example.com/c",
            "ftp://app.example.com/c",
        ] {
            assert!(refused(text), "{text}");
        }
        // Upper case in the host is read as lower case; the document's client_id must still be
        // the URL exactly as written.
        let url = DocumentUrl::parse("https://APP.example.com/c").unwrap();
        assert_eq!(url.as_str(), "https://APP.example.com/c");
        assert_eq!(url.authority(), "app.example.com");
        assert!(is_document_id("https://app.example.com/c"));
        assert!(!is_document_id("c_abc"));
        assert!(!is_document_id("http://app.example.com/c"));
    }
}
