//! The fetch: one `GET` over HTTPS to an address that was checked, within a time limit, of at
//! most [`MAX_SIZE`] bytes, following no redirect.
//!
//! The host is resolved here, once; every address it resolves to is checked
//! ([`address`](super::address)), and a refused one refuses the whole fetch. The connection is
//! then made to a checked address — never by name again — with the name in TLS's SNI, in the
//! certificate check and in `Host`. An answer from the resolver that changes between the check
//! and the connection (DNS rebinding) therefore reaches no connection. No proxy is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::DocumentError;
use super::address::refused;
use super::limits::MAX_SIZE;
use super::resolve::Resolve;
use super::url::DocumentUrl;

/// What fetches documents: the resolver, the TLS configuration, whether loopback is allowed
/// (tests only), the time limit.
pub(crate) struct Fetcher {
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) tls: Option<TlsConnector>,
    pub(crate) allow_loopback: bool,
    pub(crate) timeout: Duration,
}

/// A `200` answer: its headers and body.
pub(crate) struct Fetched {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Fetcher {
    /// `GET url`, whole, within the time limit.
    pub(crate) async fn fetch(&self, url: &DocumentUrl) -> Result<Fetched, DocumentError> {
        tokio::time::timeout(self.timeout, self.get(url))
            .await
            .map_err(|_| DocumentError::Timeout(self.timeout))?
    }

    /// The addresses to connect to, every one checked.
    async fn addresses(&self, url: &DocumentUrl) -> Result<Vec<IpAddr>, DocumentError> {
        let host = url.authority();
        let addresses = match (url.address(), url.name()) {
            (Some(address), _) => vec![address],
            (None, Some(name)) => {
                let unresolved = |reason: String| DocumentError::Unresolved {
                    host: name.to_owned(),
                    reason,
                };
                let found = (self.resolver.resolve(name).await)
                    .map_err(|error| unresolved(error.to_string()))?;
                if found.is_empty() {
                    return Err(unresolved("no address".into()));
                }
                found
            }
            (None, None) => return Err(DocumentError::Url("it has no host".into())),
        };
        // One refused address refuses them all: a name that mixes public and inside
        // addresses is not one to fetch from.
        for address in &addresses {
            if let Some(kind) = refused(*address, self.allow_loopback) {
                return Err(DocumentError::Forbidden {
                    host,
                    address: *address,
                    kind,
                });
            }
        }
        Ok(addresses)
    }

    async fn get(&self, url: &DocumentUrl) -> Result<Fetched, DocumentError> {
        let addresses = self.addresses(url).await?;
        let tls = (self.tls.as_ref())
            .ok_or_else(|| DocumentError::Unreachable("no TLS configuration".into()))?;
        let server_name = match (url.address(), url.name()) {
            (Some(address), _) => ServerName::IpAddress(address.into()),
            (None, Some(name)) => ServerName::try_from(name.to_owned())
                .map_err(|error| DocumentError::Url(error.to_string()))?,
            (None, None) => return Err(DocumentError::Url("it has no host".into())),
        };
        let tcp = connect(&addresses, url.port()).await?;
        let stream = (tls.connect(server_name, tcp).await)
            .map_err(|error| DocumentError::Unreachable(format!("TLS: {error}")))?;
        let unreachable =
            |error: hyper::Error| DocumentError::Unreachable(format!("HTTP: {error}"));
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(unreachable)?;
        let request = Request::get(url.path())
            .header(HOST, url.authority())
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("tower-agent-auth/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|error| DocumentError::Url(error.to_string()))?;
        let exchange = async move {
            let response = sender.send_request(request).await.map_err(unreachable)?;
            read(response).await
        };
        // The connection is driven here, beside the exchange, not in a task of its own: when
        // the time limit drops this future, nothing of the fetch is left running.
        tokio::pin!(exchange, connection);
        let mut connection_done = false;
        loop {
            tokio::select! {
                answer = &mut exchange => return answer,
                _ = &mut connection, if !connection_done => connection_done = true,
            }
        }
    }
}

/// A connection to the first of `addresses` (all checked) that accepts one.
async fn connect(addresses: &[IpAddr], port: u16) -> Result<TcpStream, DocumentError> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(SocketAddr::new(*address, port)).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(format!("{address}: {error}")),
        }
    }
    Err(DocumentError::Unreachable(format!(
        "no connection: {}",
        last.unwrap_or_default()
    )))
}

/// Whether `headers` say the body is JSON: `application/json` or `application/…+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(media) = (headers.get(CONTENT_TYPE))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
    else {
        return false;
    };
    let media = media.trim().to_ascii_lowercase();
    media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// The answer: `200` with a JSON body of at most [`MAX_SIZE`] bytes.
async fn read(response: http::Response<hyper::body::Incoming>) -> Result<Fetched, DocumentError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(DocumentError::Redirect(status.as_u16()));
    }
    if status != StatusCode::OK {
        return Err(DocumentError::Status(status.as_u16()));
    }
    let declared = (response.headers().get(CONTENT_LENGTH))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_SIZE as u64) {
        return Err(DocumentError::TooLarge);
    }
    let (parts, body) = response.into_parts();
    if !is_json(&parts.headers) {
        return Err(DocumentError::NotJson(format!(
            "it is served as {:?}, not application/json",
            parts.headers.get(CONTENT_TYPE)
        )));
    }
    let body = match Limited::new(body, MAX_SIZE).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(DocumentError::TooLarge);
        }
        Err(error) => return Err(DocumentError::Unreachable(format!("HTTP: {error}"))),
    };
    Ok(Fetched {
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_or_a_json_suffix() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/oauth-client+json"));
        assert!(!with("text/html"));
        assert!(!with("text/json+html"));
        assert!(!with("application/jsonp"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
