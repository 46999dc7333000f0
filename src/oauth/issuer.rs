//! The issuer: one canonical string, byte-identical in every document and response.

use url::Url;

/// Why an issuer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// Not an absolute URL.
    #[error("the issuer is not an absolute URL: {0}")]
    Malformed(url::ParseError),
    /// Neither `https` nor `http`.
    #[error("the issuer must be an https (or http) URL")]
    Scheme,
    /// It has userinfo, a query or a fragment (RFC 8414 §2).
    #[error("the issuer may have no userinfo, query or fragment")]
    Extra,
}

/// The authorization server's issuer identifier (RFC 8414 §2), canonical: lower-case scheme and
/// host, no default port, no trailing slash, no query or fragment. The same bytes appear as the
/// metadata's `issuer`, the protected-resource metadata's `authorization_servers[0]`, and the
/// `iss` of every authorization response, because clients compare them as raw strings.
///
/// ```
/// use tower_agent_auth::oauth::Issuer;
/// let issuer = Issuer::parse("HTTPS://Auth.Example.COM:443/").unwrap();
/// assert_eq!(issuer.as_str(), "https://auth.example.com");
/// assert_eq!(issuer.endpoint("/oauth/token"), "https://auth.example.com/oauth/token");
/// let nested = Issuer::parse("http://127.0.0.1:8080/tenant/").unwrap();
/// assert_eq!(nested.as_str(), "http://127.0.0.1:8080/tenant");
/// assert_eq!(nested.path(), "/tenant");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Issuer {
    text: String,
    /// The path, without a trailing slash; empty for none.
    path_len: usize,
}

impl Issuer {
    /// Parses and normalises an issuer URL.
    pub fn parse(text: &str) -> Result<Self, IssuerError> {
        let url = Url::parse(text.trim()).map_err(IssuerError::Malformed)?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(IssuerError::Scheme);
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(IssuerError::Extra);
        }
        // `url` lower-cases the scheme and host and drops a default port; the path keeps its
        // case, without the trailing slash.
        let mut text = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            text.push_str(&format!(":{port}"));
        }
        let path = url.path().trim_end_matches('/');
        text.push_str(path);
        Ok(Self {
            path_len: path.len(),
            text,
        })
    }

    /// The canonical string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The issuer's path (`/tenant`), or `""`: the prefix of every endpoint's route.
    pub fn path(&self) -> &str {
        &self.text[self.text.len() - self.path_len..]
    }

    /// The URL of an endpoint at `route` (`/oauth/token`) under the issuer.
    pub fn endpoint(&self, route: &str) -> String {
        format!("{}{route}", self.text)
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_canonical() {
        for (given, canonical) in [
            ("https://example.com", "https://example.com"),
            ("https://example.com/", "https://example.com"),
            ("HTTPS://EXAMPLE.com:443", "https://example.com"),
            ("http://127.0.0.1:80/", "http://127.0.0.1"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://example.com/Auth/", "https://example.com/Auth"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ] {
            assert_eq!(Issuer::parse(given).unwrap().as_str(), canonical, "{given}");
        }
    }

    #[test]
    fn extras_are_refused() {
        assert_eq!(
            Issuer::parse("https://example.com/?a=b"),
            Err(IssuerError::Extra)
        );
        assert_eq!(
            Issuer::parse("https://example.com/#f"),
            Err(IssuerError::Extra)
        );
        assert_eq!(
            Issuer::parse("https://u@example.com/"),
            Err(IssuerError::Extra)
        );
        assert_eq!(
            Issuer::parse("ftp://example.com/"),
            Err(IssuerError::Scheme)
        );
        assert!(matches!(
            Issuer::parse("/relative"),
            Err(IssuerError::Malformed(_))
        ));
    }

    #[test]
    fn the_path_is_the_routes_prefix() {
        assert_eq!(Issuer::parse("https://e.com").unwrap().path(), "");
        assert_eq!(Issuer::parse("https://e.com/a/b/").unwrap().path(), "/a/b");
    }
}
