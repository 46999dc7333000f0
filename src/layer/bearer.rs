//! `Authorization` header parsing (RFC 7235 credentials, RFC 6750 `b64token`).

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What a request presents in its `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    Absent,
    /// `Bearer <b64token>` (scheme case-insensitive).
    Bearer(&'a str),
    /// Another scheme (`Basic …`, `DPoP …`): some other layer's business.
    OtherScheme,
    /// Two headers, an empty one, or a `Bearer` header without a valid `b64token`.
    Malformed,
}

pub(crate) fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credentials::Absent;
    };
    if values.next().is_some() {
        return Credentials::Malformed;
    }
    parse(value.as_bytes())
}

/// The bearer token of a request whose credentials were already found to be `Bearer`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    match credentials(headers) {
        Credentials::Bearer(token) => Some(token),
        _ => None,
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn parse(value: &[u8]) -> Credentials<'_> {
    let value = value.trim_ascii_start();
    let end = value.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    let value = &value[..end];
    let scheme_end = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if scheme.is_empty() || !scheme.iter().all(|&b| is_tchar(b)) {
        return Credentials::Malformed;
    }
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Credentials::OtherScheme;
    }
    // RFC 7235: 1*SP between the scheme and the token68.
    let token = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    if !is_b64token(token) {
        return Credentials::Malformed;
    }
    // A b64token is ASCII, so this cannot fail.
    std::str::from_utf8(token).map_or(Credentials::Malformed, Credentials::Bearer)
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_len > 0
        && token[..body_len]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn one(value: &'static str) -> Credentials<'static> {
        parse(value.as_bytes())
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(one("Bearer abc"), Credentials::Bearer("abc"));
        assert_eq!(one("bearer abc"), Credentials::Bearer("abc"));
        assert_eq!(one("BEARER abc"), Credentials::Bearer("abc"));
    }

    #[test]
    fn surrounding_whitespace_and_multiple_spaces_are_allowed() {
        assert_eq!(one("  Bearer   abc\t "), Credentials::Bearer("abc"));
    }

    #[test]
    fn b64token_padding_is_allowed_only_at_the_end() {
        assert_eq!(one("Bearer ab+/c=="), Credentials::Bearer("ab+/c=="));
        assert_eq!(one("Bearer a=b"), Credentials::Malformed);
        assert_eq!(one("Bearer ==="), Credentials::Malformed);
    }

    #[test]
    fn missing_or_invalid_tokens_are_malformed() {
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer\tabc",
            "Bear(er abc",
        ] {
            assert_eq!(one(bad), Credentials::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn other_schemes_are_left_alone() {
        assert_eq!(one("Basic dXNlcjpwYXNz"), Credentials::OtherScheme);
        assert_eq!(one("DPoP abc"), Credentials::OtherScheme);
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credentials(&headers), Credentials::Malformed);
    }

    #[test]
    fn non_ascii_bytes_are_malformed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert_eq!(credentials(&headers), Credentials::Malformed);
    }
}
