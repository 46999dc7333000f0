//! Why a redirect URI or pattern is refused: one variant per rule, one line each.

/// Why a redirect URI or pattern was refused: one line, fit for the authorize error page and
/// for registration's `invalid_redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Nothing was given.
    #[error("the redirect URI is empty")]
    Empty,
    /// Longer than [`MAX_LEN`](super::MAX_LEN).
    #[error("the redirect URI is longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A space, tab, newline or other whitespace or control character, anywhere: URL parsers
    /// drop some of them silently.
    #[error("the redirect URI contains whitespace or a control character")]
    ControlOrWhitespace,
    /// A character outside ASCII: internationalized hosts and unencoded paths are refused.
    #[error("the redirect URI contains a non-ASCII character (internationalized URIs are refused)")]
    NonAscii,
    /// A backslash, which URL parsers read as `/` in some places and not in others.
    #[error("the redirect URI contains a backslash")]
    Backslash,
    /// A `#`: redirect URIs carry no fragment (RFC 6749 §3.1.2).
    #[error("the redirect URI has a fragment ('#')")]
    Fragment,
    /// A `*` in a URI, or anywhere in a pattern but its final `/*`.
    #[error("'*' is allowed only at the end of a pattern, as '/*'")]
    Wildcard,
    /// Not an absolute URI (no scheme).
    #[error("the redirect URI is not absolute: expected https://host/path")]
    NotAbsolute,
    /// A scheme other than `https` and `http` (given lowercased).
    #[error("the scheme '{0}' is refused: only https, or http on a loopback host")]
    UnsupportedScheme(String),
    /// `http` on a host that is not `127.0.0.1`, `[::1]` or `localhost`.
    #[error("http is allowed only on a loopback host (127.0.0.1, [::1] or localhost); use https")]
    InsecureHttp,
    /// The scheme is not followed by `//` (`https:/example.com`, `https:example.com`).
    #[error("the scheme must be followed by '//' and a host")]
    NoAuthority,
    /// `scheme://` followed by no host.
    #[error("the redirect URI has no host")]
    EmptyHost,
    /// A `user@` or `user:password@` before the host.
    #[error("the redirect URI carries userinfo ('user@' before the host)")]
    Userinfo,
    /// The host is neither a DNS name (letters, digits, `-`, `_` in non-empty labels) nor an IP
    /// address.
    #[error("the host is not a DNS name of letters, digits, '-' and '_' in non-empty labels")]
    InvalidHost,
    /// A host label starting with `xn--`.
    #[error("the host has a punycode label ('xn--'): internationalized hosts are refused")]
    PunycodeHost,
    /// The URL parser reads the host as something other than what was written.
    #[error("the host '{written}' is not in canonical form: a URL parser reads it as '{parsed}'")]
    NonCanonicalHost {
        /// The host as written.
        written: String,
        /// The host as the parser reads it.
        parsed: String,
    },
    /// An empty port, port 0, leading zeros, or more than 65535.
    #[error("the port must be a decimal number from 1 to 65535 without leading zeros")]
    InvalidPort,
    /// A `.` or `..` path segment (also `..;`).
    #[error("the path has a '.' or '..' segment")]
    DotSegment,
    /// Two slashes in a row in the path.
    #[error("the path has an empty segment ('//')")]
    EmptyPathSegment,
    /// A percent-encoded dot, slash, backslash, percent sign or control character in the path
    /// (the escape as written).
    #[error("the path percent-encodes a dot, slash, backslash, '%' or control character ('{0}')")]
    EncodedPathCharacter(String),
    /// A `%` not followed by two hex digits.
    #[error("a '%' is not followed by two hex digits")]
    MalformedPercent,
    /// A character RFC 3986 does not allow unencoded in a path or query.
    #[error("the path or query contains '{0}', which must be percent-encoded")]
    InvalidCharacter(char),
    /// The URL parser would rewrite the path or query (a safety net behind the checks above).
    #[error("the path or query is not in canonical form")]
    NotCanonical,
    /// The `url` crate refused it.
    #[error("the redirect URI is not a valid URL: {0}")]
    Malformed(url::ParseError),
    /// A path-prefix pattern with a query.
    #[error("a wildcard pattern has no query: write https://host/path/*")]
    WildcardWithQuery,
    /// A domain pattern with a port or other extra parts.
    #[error("a domain pattern is a bare host name such as example.com: no scheme, port or path")]
    DomainPatternSyntax,
    /// A domain pattern of one label, which would cover a top-level domain or `localhost`.
    #[error("a domain pattern needs at least two labels, such as example.com")]
    DomainPatternSingleLabel,
    /// A domain pattern that is an IP address.
    #[error("a domain pattern names a DNS domain, not an IP address")]
    DomainPatternIpAddress,
}
