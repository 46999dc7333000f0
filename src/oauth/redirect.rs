//! Redirect URIs: what a client may be sent back to.
//!
//! An authorization server that redirects to the wrong place hands an attacker the code. This
//! module decides two things:
//!
//! - whether a URI a client presents (the authorize request's `redirect_uri`, a registration's
//!   `redirect_uris`) is acceptable at all: [`RedirectUri::parse`];
//! - whether it is on a client's allowlist: [`RedirectPattern::matches`] and [`allowed`].
//!
//! # What a redirect URI may be
//!
//! An absolute `https://` URI, or `http://` on a loopback host (`127.0.0.1`, `[::1]`,
//! `localhost`). Other schemes are refused, including RFC 8252 private-use schemes
//! (`com.example.app:/cb`); they could come later. Refused as well, each with its own
//! [`RedirectError`]:
//!
//! - userinfo (`https://example.com@evil.com/`), a fragment (even an empty `#`), a missing `//`
//!   (`https:example.com`), an empty host;
//! - whitespace, control characters and backslashes anywhere, even where a URL parser would
//!   quietly drop or convert them;
//! - non-ASCII characters and punycode (`xn--`) host labels: internationalized hosts are refused
//!   outright, because the consent page shows the redirect host to a person, and a homoglyph or
//!   an `xn--` string is not something a person can judge;
//! - a host or port not written in canonical form (`127.1`, `0x7f.0.0.1`, `:0443`, a trailing
//!   dot, a percent-encoded host): what a server compares must be what it was shown;
//! - in the path, `.` and `..` segments (also before a `;`), empty segments (`//`) and
//!   percent-encoded dots, slashes, backslashes, percent signs and control characters (`%2e`,
//!   `%2F`, `%5c`, `%25`, `%0a`, in any case), which servers decode in different ways;
//! - characters RFC 3986 does not allow unencoded in a path or query (`<`, `"`, `{`, `|`…), and
//!   `*`, which only patterns use.
//!
//! Every check runs on the text as written, and the `url` crate then parses it. The URI is
//! accepted only if both readings agree: the parser did not rewrite the host, port, path or
//! query. So there is no parser differential left to exploit between this check and whatever
//! later follows the redirect.
//!
//! # Comparison
//!
//! A [`RedirectUri`] keeps the string as the client wrote it ([`RedirectUri::as_str`]), which
//! is what the token endpoint compares byte for byte with the authorize request's. Allowlist
//! matching compares the parsed parts: scheme and host case-insensitively (the parser lowercases
//! them), the port with an explicit default (`:443` on https) the same as none, and path and
//! query exactly, case-sensitively, as written. An empty path is `/`.
//!
//! # Patterns (an agent's allowlist)
//!
//! - **exact**: `https://app.example.com/oauth/callback` — that URI, query included;
//! - **path prefix**: `https://app.example.com/oauth/*` — same scheme, host and port; the path
//!   `/oauth` itself or anything below it at a `/` boundary (not `/oauthx`); any query;
//! - **domain**: `example.com` — that host or any subdomain, over https on the default port,
//!   any path and query. It needs at least two labels; there is no public-suffix list, so name a
//!   domain the client controls.
//!
//! **Loopback** (RFC 8252 §7.3): a pattern over `http` on a loopback host matches on any port,
//! since native apps listen on whatever port the system gives them. That is the only port
//! leniency: the host must still be the same (`127.0.0.1` does not match `localhost`), and an
//! `https` loopback pattern keeps its port.
//!
//! ```
//! use tower_agent_auth::oauth::redirect::{RedirectError, RedirectPattern, RedirectUri, allowed};
//!
//! let patterns: Vec<RedirectPattern> = ["https://app.example.com/oauth/*", "http://127.0.0.1/cb"]
//!     .iter()
//!     .map(|p| p.parse())
//!     .collect::<Result<_, _>>()?;
//!
//! let uri = RedirectUri::parse("https://app.example.com/oauth/done?tab=1")?;
//! assert!(allowed(&patterns, &uri));
//! // A native app's loopback listener, on the port it got.
//! assert!(allowed(&patterns, &RedirectUri::parse("http://127.0.0.1:51234/cb")?));
//! // A look-alike host is a valid URI, just not on the list.
//! assert!(!allowed(&patterns, &RedirectUri::parse("https://app.example.com.evil/oauth/x")?));
//! // Tricks are refused before any matching.
//! assert_eq!(
//!     RedirectUri::parse("https://app.example.com@evil.com/oauth/x"),
//!     Err(RedirectError::Userinfo),
//! );
//! assert_eq!(
//!     RedirectUri::parse("https://app.example.com/oauth/%2e%2e/admin"),
//!     Err(RedirectError::EncodedPathCharacter("%2e".into())),
//! );
//! # Ok::<(), RedirectError>(())
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

/// The longest redirect URI or pattern accepted, in bytes.
pub const MAX_LEN: usize = 2048;

pub use error::RedirectError;

/// A redirect URI a client presented, validated (see the [module docs](self)).
///
/// Two `RedirectUri`s are equal when written byte for byte the same, as the token endpoint
/// compares the authorize request's `redirect_uri` with its own.
#[derive(Debug, Clone)]
pub struct RedirectUri {
    raw: Box<str>,
    url: Url,
}

impl RedirectUri {
    /// Parses and validates a redirect URI.
    pub fn parse(text: &str) -> Result<Self, RedirectError> {
        let parts = Parts::split(text)?;
        let url = Url::parse(text).map_err(RedirectError::Malformed)?;
        parts.agrees_with(&url)?;
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(RedirectError::InsecureHttp);
        }
        Ok(Self {
            raw: text.into(),
            url,
        })
    }

    /// The URI exactly as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed URI: lowercased scheme and host, no default port, `/` for an empty path.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host, lowercased (IPv6 in brackets): what the consent page shows.
    pub fn host(&self) -> &str {
        // Validation guarantees a host.
        self.url.host_str().unwrap_or_default()
    }

    /// Whether the host is `127.0.0.1`, `[::1]` or `localhost`.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }
}

impl PartialEq for RedirectUri {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for RedirectUri {}

impl std::hash::Hash for RedirectUri {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for RedirectUri {
    type Err = RedirectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One entry of an agent's redirect allowlist: an exact URI, a path prefix (`https://h/p/*`) or a
/// domain (`example.com`). See the [module docs](self) for what each matches.
///
/// [`Display`](fmt::Display) gives the canonical text, which parses back to the same pattern:
/// what storage and the CLI keep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectPattern(Kind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Exact(Url),
    /// `base`'s path ends with `/`; `prefix` is that path without it (empty for the root).
    PathPrefix {
        base: Url,
        prefix: String,
    },
    /// Lowercased.
    Domain(String),
}

impl RedirectPattern {
    /// Parses a pattern: a URI ending in `/*` is a path prefix, another URI is exact, and a
    /// text with neither `:` nor `/` is a domain.
    pub fn parse(text: &str) -> Result<Self, RedirectError> {
        if !text.contains(['/', ':']) {
            return parse_domain(text).map(|d| Self(Kind::Domain(d)));
        }
        let host_and_port = text.split_once(':').is_some_and(|(host, port)| {
            host.contains('.') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        });
        if host_and_port {
            // `example.com:8443`: a host with a port, not a scheme and a path.
            return Err(RedirectError::DomainPatternSyntax);
        }
        if let Some(base) = text.strip_suffix('*').filter(|b| b.ends_with('/')) {
            let base = RedirectUri::parse(base)?.url;
            if base.query().is_some() {
                return Err(RedirectError::WildcardWithQuery);
            }
            let prefix = base.path()[..base.path().len() - 1].to_owned();
            return Ok(Self(Kind::PathPrefix { base, prefix }));
        }
        Ok(Self::exact(&RedirectUri::parse(text)?))
    }

    /// The pattern that matches this URI alone (and, for an http loopback URI, on any port):
    /// what a dynamically registered client's `redirect_uris` become.
    pub fn exact(uri: &RedirectUri) -> Self {
        Self(Kind::Exact(uri.url.clone()))
    }

    /// Whether `uri` is allowed by this pattern.
    pub fn matches(&self, uri: &RedirectUri) -> bool {
        let uri = &uri.url;
        match &self.0 {
            Kind::Exact(pattern) => {
                same_origin(pattern, uri)
                    && pattern.path() == uri.path()
                    && pattern.query() == uri.query()
            }
            Kind::PathPrefix { base, prefix } => {
                same_origin(base, uri)
                    && uri
                        .path()
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            Kind::Domain(domain) => {
                uri.scheme() == "https"
                    && uri.port().is_none()
                    && uri.domain().is_some_and(|host| {
                        host.strip_suffix(domain.as_str())
                            .is_some_and(|sub| sub.is_empty() || sub.ends_with('.'))
                    })
            }
        }
    }
}

impl fmt::Display for RedirectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Exact(url) => f.write_str(url.as_str()),
            Kind::PathPrefix { base, .. } => write!(f, "{}*", base.as_str()),
            Kind::Domain(domain) => f.write_str(domain),
        }
    }
}

impl FromStr for RedirectPattern {
    type Err = RedirectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether any of `patterns` allows `uri`: the authorize endpoint's check. An empty list allows
/// nothing.
pub fn allowed(patterns: &[RedirectPattern], uri: &RedirectUri) -> bool {
    patterns.iter().any(|p| p.matches(uri))
}

/// Same scheme, host and port, except that an http loopback pattern takes any port.
fn same_origin(pattern: &Url, uri: &Url) -> bool {
    pattern.scheme() == uri.scheme()
        && pattern.host() == uri.host()
        && (pattern.port() == uri.port() || (pattern.scheme() == "http" && is_loopback(pattern)))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// A redirect URI split by hand, as written, to compare with what the `url` crate makes of it.
struct Parts<'a> {
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn split(text: &'a str) -> Result<Self, RedirectError> {
        check_length_and_characters(text)?;
        if text.contains('#') {
            return Err(RedirectError::Fragment);
        }

        let (scheme, rest) = text.split_once(':').ok_or(RedirectError::NotAbsolute)?;
        let mut chars = scheme.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(RedirectError::NotAbsolute);
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(RedirectError::UnsupportedScheme(scheme));
        }
        let rest = rest.strip_prefix("//").ok_or(RedirectError::NoAuthority)?;

        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.is_empty() {
            return Err(RedirectError::EmptyHost);
        }
        if authority.contains('@') {
            return Err(RedirectError::Userinfo);
        }
        let (host, port) = split_host_port(authority)?;
        if !host.starts_with('[') {
            check_host_name(host)?;
        }
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (tail, None),
        };
        check_path(path)?;
        if let Some(query) = query {
            check_characters(query, true)?;
        }
        Ok(Self {
            host,
            port,
            path,
            query,
        })
    }

    /// Whether the `url` crate read the same host, port, path and query as were written.
    fn agrees_with(&self, url: &Url) -> Result<(), RedirectError> {
        // Both are excluded by the checks on the text; a disagreement is a parser differential.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectError::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(RedirectError::Fragment);
        }
        let parsed = url.host_str().ok_or(RedirectError::EmptyHost)?;
        if !self.host.eq_ignore_ascii_case(parsed) {
            return Err(RedirectError::NonCanonicalHost {
                written: self.host.to_owned(),
                parsed: parsed.to_owned(),
            });
        }
        if self.port.or(url.port_or_known_default()) != url.port_or_known_default() {
            return Err(RedirectError::InvalidPort);
        }
        let path = if self.path.is_empty() { "/" } else { self.path };
        if url.path() != path || url.query() != self.query {
            return Err(RedirectError::NotCanonical);
        }
        Ok(())
    }
}

/// What URIs and patterns alike refuse anywhere in their text.
fn check_length_and_characters(text: &str) -> Result<(), RedirectError> {
    if text.is_empty() {
        return Err(RedirectError::Empty);
    }
    if text.len() > MAX_LEN {
        return Err(RedirectError::TooLong { max: MAX_LEN });
    }
    for c in text.chars() {
        match c {
            c if c.is_control() || c.is_whitespace() => {
                return Err(RedirectError::ControlOrWhitespace);
            }
            c if !c.is_ascii() => return Err(RedirectError::NonAscii),
            '\\' => return Err(RedirectError::Backslash),
            '*' => return Err(RedirectError::Wildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `host[:port]` or `[v6][:port]`, checking the port as written.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), RedirectError> {
    let split = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(split);
    if host.is_empty() {
        return Err(RedirectError::EmptyHost);
    }
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => None,
        None => return Err(RedirectError::InvalidHost),
        Some(digits) => {
            if digits.is_empty()
                || digits.starts_with('0')
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(RedirectError::InvalidPort);
            }
            Some(digits.parse().map_err(|_| RedirectError::InvalidPort)?)
        }
    };
    Ok((host, port))
}

/// A DNS name as written: non-empty labels of letters, digits, `-` and `_`, no `xn--`.
fn check_host_name(host: &str) -> Result<(), RedirectError> {
    if host.len() > 253 {
        return Err(RedirectError::InvalidHost);
    }
    for label in host.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RedirectError::InvalidHost);
        }
        if label.len() >= 4 && label[..4].eq_ignore_ascii_case("xn--") {
            return Err(RedirectError::PunycodeHost);
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), RedirectError> {
    if path.contains("//") {
        return Err(RedirectError::EmptyPathSegment);
    }
    for segment in path.split('/') {
        // Some servers (Tomcat) read `..;x` as `..`.
        let name = segment.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Err(RedirectError::DotSegment);
        }
    }
    check_characters(path, false)?;
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        // `check_characters` has seen two hex digits after every `%`.
        let decoded = (hex(bytes[i + 1]) << 4) | hex(bytes[i + 2]);
        if matches!(decoded, b'.' | b'/' | b'\\' | b'%') || decoded.is_ascii_control() {
            return Err(RedirectError::EncodedPathCharacter(
                path[i..i + 3].to_owned(),
            ));
        }
    }
    Ok(())
}

/// Only what RFC 3986 allows unencoded in a path (`pchar` and `/`) or a query (also `?`, but
/// not `'`), and `%` only before two hex digits.
fn check_characters(text: &str, query: bool) -> Result<(), RedirectError> {
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if c == '%' {
            let hex_at = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex_at(i + 1) && hex_at(i + 2)) {
                return Err(RedirectError::MalformedPercent);
            }
            continue;
        }
        let allowed = c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | '~')
            || matches!(
                c,
                '!' | '$' | '&' | '\'' | '(' | ')' | '+' | ',' | ';' | '='
            )
            || matches!(c, ':' | '@' | '/')
            || (query && c == '?');
        // RFC 3986 allows `'` in a query, but URL parsers encode it there: they would not agree.
        let allowed = allowed && !(query && c == '\'');
        if !allowed {
            return Err(RedirectError::InvalidCharacter(c));
        }
    }
    Ok(())
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A domain pattern: a DNS name of two labels or more, lowercased.
fn parse_domain(text: &str) -> Result<String, RedirectError> {
    check_length_and_characters(text)?;
    check_host_name(text)?;
    if text
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        // A numeric last label is how URL parsers recognize an IPv4 address, in any notation.
        return Err(RedirectError::DomainPatternIpAddress);
    }
    if !text.contains('.') {
        return Err(RedirectError::DomainPatternSingleLabel);
    }
    Ok(text.to_ascii_lowercase())
}

mod error;
#[cfg(test)]
mod tests;
