//! `Authorization` header parsing (RFC 7235 credentials, RFC 6750 `b64token`).

use http::HeaderMap;

use crate::bytes::is_b64_char;
use http::header::AUTHORIZATION;

/// What a request presents in its `Authorization` header. `Debug` never shows the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    Absent,
    /// `Bearer <token>` (scheme case-insensitive). The token bytes are not validated yet:
    /// our own tokens get the stricter format check, others [`is_b64token`].
    Bearer(&'a [u8]),
    /// Another scheme (`Basic …`, `DPoP …`): some other layer's business.
    OtherScheme,
    /// Two headers, an empty one, or a `Bearer` header without a token.
    Malformed,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Bearer(token) => write!(f, "Bearer(<{} bytes>)", token.len()),
            Self::OtherScheme => f.write_str("OtherScheme"),
            Self::Malformed => f.write_str("Malformed"),
        }
    }
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

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn parse(value: &[u8]) -> Credentials<'_> {
    // The usual shape, `Bearer <token>`, without the general scan. Anything else (leading
    // whitespace, two spaces, another scheme) takes the general parser, which answers the same
    // for the usual shape too: the fast path only saves time.
    if let Some((scheme, token)) = value.split_at_checked(BEARER.len()) {
        if scheme.eq_ignore_ascii_case(BEARER) && token.first().is_some_and(|&b| !is_ows(b)) {
            return Credentials::Bearer(trim_ows_end(token));
        }
    }
    parse_general(value)
}

/// RFC 7235 `credentials`, for any shape the fast path in [`parse`] does not take.
fn parse_general(value: &[u8]) -> Credentials<'_> {
    let value = trim_ows_end(value.trim_ascii_start());
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
    if token.is_empty() {
        return Credentials::Malformed;
    }
    Credentials::Bearer(token)
}

const BEARER: &[u8] = b"bearer ";

fn trim_ows_end(value: &[u8]) -> &[u8] {
    let end = value.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    &value[..end]
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_len > 0 && token[..body_len].iter().all(|&b| is_b64_char(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn one(value: &'static str) -> Credentials<'static> {
        match parse(value.as_bytes()) {
            Credentials::Bearer(token) if !is_b64token(token) => Credentials::Malformed,
            other => other,
        }
    }

    fn bearer(token: &'static str) -> Credentials<'static> {
        Credentials::Bearer(token.as_bytes())
    }

    #[test]
    fn debug_never_shows_the_token() {
        let debug = format!("{:?}", bearer("acme_bot_secret"));
        assert_eq!(debug, "Bearer(<15 bytes>)");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(one("Bearer abc"), bearer("abc"));
        assert_eq!(one("bearer abc"), bearer("abc"));
        assert_eq!(one("BEARER abc"), bearer("abc"));
    }

    #[test]
    fn surrounding_whitespace_and_multiple_spaces_are_allowed() {
        assert_eq!(one("  Bearer   abc\t "), bearer("abc"));
    }

    #[test]
    fn b64token_padding_is_allowed_only_at_the_end() {
        assert_eq!(one("Bearer ab+/c=="), bearer("ab+/c=="));
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
    fn non_ascii_bytes_are_not_a_b64token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        let Credentials::Bearer(token) = credentials(&headers) else {
            panic!("a bearer token");
        };
        assert!(!is_b64token(token));
    }

    #[test]
    fn a_token_ending_in_a_non_b64_byte_is_not_a_b64token() {
        // The last byte before any `=` padding must be checked too, not only the ones before it.
        assert!(!is_b64token(b"abc,"));
        assert!(!is_b64token(b"abc,=="));
        assert!(is_b64token(b"abc"));
        assert!(is_b64token(b"a"));
    }

    #[test]
    fn two_spaces_after_bearer_still_give_the_bare_token() {
        // RFC 7235 allows 1*SP here; the fast path declines this shape, the general parser
        // takes it, and the token must not keep a leading space.
        assert_eq!(parse(b"Bearer  abc"), bearer("abc"));
        assert_eq!(parse(b"Bearer  abc"), parse_general(b"Bearer  abc"));
    }

    #[test]
    fn trailing_whitespace_is_trimmed_by_the_fast_path() {
        assert_eq!(parse(b"Bearer abc \t"), bearer("abc"));
    }

    proptest::proptest! {
        #[test]
        fn fast_path_answers_what_the_general_parser_answers(
            value in proptest::string::bytes_regex(r"(?s-u)[ \t]?((?i:bearer)|basic|b)[ \t]{0,3}[a-z=,\t \x00\xff]{0,5}").unwrap(),
        ) {
            proptest::prop_assert_eq!(parse(&value), parse_general(&value));
        }
    }
}
