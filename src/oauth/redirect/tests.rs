use proptest::prelude::*;

use super::*;

fn err(text: &str) -> RedirectError {
    RedirectUri::parse(text).expect_err(text)
}

fn pattern_err(text: &str) -> RedirectError {
    RedirectPattern::parse(text).expect_err(text)
}

#[test]
fn each_parse_error_names_its_cause() {
    use RedirectError as E;
    let cases: Vec<(&str, RedirectError)> = vec![
        ("", E::Empty),
        ("https://example.com/\t", E::ControlOrWhitespace),
        ("https://example.com/\u{a0}", E::ControlOrWhitespace),
        ("https://example.com/\u{7f}", E::ControlOrWhitespace),
        ("https://exämple.com/", E::NonAscii),
        ("https://example.com\\cb", E::Backslash),
        ("https://example.com/cb#", E::Fragment),
        ("https://example.com/cb/*", E::Wildcard),
        ("https://*.example.com/cb", E::Wildcard),
        ("/cb", E::NotAbsolute),
        ("1https://example.com/", E::NotAbsolute),
        (
            "javascript:alert(1)",
            E::UnsupportedScheme("javascript".into()),
        ),
        (
            "JavaScript:alert(1)",
            E::UnsupportedScheme("javascript".into()),
        ),
        (
            "com.example.app:/cb",
            E::UnsupportedScheme("com.example.app".into()),
        ),
        ("http://example.com/cb", E::InsecureHttp),
        ("https:example.com/cb", E::NoAuthority),
        ("https:/example.com/cb", E::NoAuthority),
        ("https:///cb", E::EmptyHost),
        ("https://:443/cb", E::EmptyHost),
        ("https://a@example.com/", E::Userinfo),
        ("https://a:b@example.com/", E::Userinfo),
        ("https://exa%6dple.com/", E::InvalidHost),
        ("https://example..com/", E::InvalidHost),
        ("https://example.com./", E::InvalidHost),
        ("https://-example.com/", E::InvalidHost),
        ("https://[::1]x/", E::InvalidHost),
        ("https://xn--exmple-cua.com/", E::PunycodeHost),
        ("https://a.XN--exmple-cua.com/", E::PunycodeHost),
        (
            "https://127.1/",
            E::NonCanonicalHost {
                written: "127.1".into(),
                parsed: "127.0.0.1".into(),
            },
        ),
        (
            "https://[0:0::1]/",
            E::NonCanonicalHost {
                written: "[0:0::1]".into(),
                parsed: "[::1]".into(),
            },
        ),
        ("https://example.com:/", E::InvalidPort),
        ("https://example.com:0/", E::InvalidPort),
        ("https://example.com:0443/", E::InvalidPort),
        ("https://example.com:65536/", E::InvalidPort),
        ("https://example.com:4a/", E::InvalidPort),
        ("https://example.com/a/../b", E::DotSegment),
        ("https://example.com/a/./b", E::DotSegment),
        ("https://example.com/a/..", E::DotSegment),
        ("https://example.com/a/..;x/b", E::DotSegment),
        ("https://example.com//a", E::EmptyPathSegment),
        (
            "https://example.com/a%2E",
            E::EncodedPathCharacter("%2E".into()),
        ),
        (
            "https://example.com/a%2fb",
            E::EncodedPathCharacter("%2f".into()),
        ),
        (
            "https://example.com/a%5Cb",
            E::EncodedPathCharacter("%5C".into()),
        ),
        (
            "https://example.com/a%252fb",
            E::EncodedPathCharacter("%25".into()),
        ),
        (
            "https://example.com/a%00",
            E::EncodedPathCharacter("%00".into()),
        ),
        (
            "https://example.com/a%7F",
            E::EncodedPathCharacter("%7F".into()),
        ),
        ("https://example.com/a%", E::MalformedPercent),
        ("https://example.com/a%4", E::MalformedPercent),
        ("https://example.com/cb?x=%zz", E::MalformedPercent),
        ("https://example.com/a<b", E::InvalidCharacter('<')),
        ("https://example.com/a|b", E::InvalidCharacter('|')),
        ("https://example.com/cb?x=`", E::InvalidCharacter('`')),
        ("https://example.com/cb?x={}", E::InvalidCharacter('{')),
        ("https://example.com/cb?x='", E::InvalidCharacter('\'')),
        (
            "https://[zz]/",
            E::Malformed(url::ParseError::InvalidIpv6Address),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(err(text), expected, "{text:?}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
    assert_eq!(err(&long), E::TooLong { max: MAX_LEN });
}

#[test]
fn accepted_uris_keep_their_text_and_read_canonically() {
    let uri = RedirectUri::parse("HTTPS://Example.COM:443?x=%2F").unwrap();
    assert_eq!(uri.as_str(), "HTTPS://Example.COM:443?x=%2F");
    assert_eq!(uri.to_string(), "HTTPS://Example.COM:443?x=%2F");
    assert_eq!(uri.url().as_str(), "https://example.com/?x=%2F");
    assert_eq!(uri.host(), "example.com");
    assert!(!uri.is_loopback());
    // Equality is byte for byte, as the token endpoint compares.
    assert_ne!(
        uri,
        RedirectUri::parse("https://example.com/?x=%2F").unwrap()
    );
    assert_eq!(uri, uri.as_str().parse().unwrap());

    for loopback in [
        "http://127.0.0.1/",
        "http://[::1]:8080/cb",
        "http://LocalHost:1/",
    ] {
        assert!(
            RedirectUri::parse(loopback).unwrap().is_loopback(),
            "{loopback}"
        );
    }
    assert_eq!(RedirectUri::parse("http://[::1]/").unwrap().host(), "[::1]");
    // An IP address other than loopback is fine over https, and `%` escapes of ordinary
    // characters are fine in the path.
    assert!(RedirectUri::parse("https://192.0.2.7:8443/c%41b;v=1/x@y:z").is_ok());
}

#[test]
fn pattern_errors() {
    use RedirectError as E;
    assert_eq!(pattern_err(""), E::Empty);
    assert_eq!(pattern_err("com"), E::DomainPatternSingleLabel);
    assert_eq!(pattern_err("localhost"), E::DomainPatternSingleLabel);
    assert_eq!(pattern_err("127.0.0.1"), E::DomainPatternIpAddress);
    assert_eq!(pattern_err("example.123"), E::DomainPatternIpAddress);
    assert_eq!(pattern_err("example.com:8443"), E::DomainPatternSyntax);
    assert_eq!(
        pattern_err("com.example.app:cb"),
        E::UnsupportedScheme("com.example.app".into())
    );
    assert_eq!(pattern_err("*.example.com"), E::Wildcard);
    assert_eq!(pattern_err("xn--exmple-cua.com"), E::PunycodeHost);
    assert_eq!(pattern_err("exämple.com"), E::NonAscii);
    assert_eq!(pattern_err("example.com."), E::InvalidHost);
    assert_eq!(pattern_err("user@example.com"), E::InvalidHost);
    assert_eq!(pattern_err(" example.com"), E::ControlOrWhitespace);
    assert_eq!(pattern_err("example.com/cb"), E::NotAbsolute);
    assert_eq!(pattern_err("https://example.com/cb*"), E::Wildcard);
    assert_eq!(pattern_err("https://example.com/*/cb"), E::Wildcard);
    assert_eq!(pattern_err("https://example.com/*/cb/*"), E::Wildcard);
    assert_eq!(pattern_err("https://*.example.com/cb"), E::Wildcard);
    assert_eq!(
        pattern_err("https://example.com/cb?x=1/*"),
        E::WildcardWithQuery
    );
    assert_eq!(
        pattern_err("https://example.com/cb?/*"),
        E::WildcardWithQuery
    );
    assert_eq!(pattern_err("http://example.com/cb/*"), E::InsecureHttp);
    assert_eq!(pattern_err("https://example.com/cb#x"), E::Fragment);
    assert_eq!(pattern_err("https://example.com/a/../*"), E::DotSegment);
}

#[test]
fn patterns_display_canonically_and_parse_back() {
    let cases = [
        ("https://example.com/cb", "https://example.com/cb"),
        (
            "HTTPS://Example.com:443/cb?x=1",
            "https://example.com/cb?x=1",
        ),
        ("https://example.com", "https://example.com/"),
        (
            "https://example.com:8443/cb/*",
            "https://example.com:8443/cb/*",
        ),
        ("https://Example.com/*", "https://example.com/*"),
        ("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000/cb"),
        ("http://[::1]/cb/*", "http://[::1]/cb/*"),
        ("Example.COM", "example.com"),
        ("a.b.example.com", "a.b.example.com"),
    ];
    for (text, canonical) in cases {
        let pattern = RedirectPattern::parse(text).unwrap();
        assert_eq!(pattern.to_string(), canonical, "{text}");
        assert_eq!(
            canonical.parse::<RedirectPattern>().unwrap(),
            pattern,
            "{text}"
        );
    }
}

#[test]
fn kinds_are_told_apart() {
    let exact = RedirectPattern::parse("https://example.com/cb").unwrap();
    let prefix = RedirectPattern::parse("https://example.com/cb/*").unwrap();
    let domain = RedirectPattern::parse("example.com").unwrap();
    assert!(matches!(exact.0, Kind::Exact(_)));
    assert!(matches!(&prefix.0, Kind::PathPrefix { prefix, .. } if prefix == "/cb"));
    assert!(matches!(domain.0, Kind::Domain(_)));
    let root = RedirectPattern::parse("https://example.com/*").unwrap();
    assert!(matches!(&root.0, Kind::PathPrefix { prefix, .. } if prefix.is_empty()));
}

#[test]
fn error_messages_are_one_line() {
    let errors = [
        err(""),
        err("https://127.1/"),
        err("ftp://example.com/"),
        err("https://[zz]/"),
        err("https://example.com/%2e"),
        err("https://example.com/<"),
        pattern_err("com"),
        pattern_err("example.com:1"),
        pattern_err("https://example.com/?/*"),
    ];
    for e in errors {
        let message = e.to_string();
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{message:?}"
        );
    }
}

/// Whatever is accepted, the `url` crate reads as written (host case and a default port
/// aside), its canonical form reads the same again, and its exact pattern matches it. A good
/// share of the generated texts must be accepted, or the property says nothing.
#[test]
fn accepted_uris_are_read_one_way() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::Cell;

    let scheme = prop_oneof![
        4 => Just("https://".to_owned()),
        1 => Just("http://".to_owned()),
        1 => Just("HTTPS://".to_owned()),
        1 => "(https?|ftp)(:/|:|://)",
    ];
    let host = prop_oneof![
        4 => "[a-z0-9]{1,6}(\\.[a-zA-Z0-9_-]{1,6}){0,2}",
        1 => Just("[::1]".to_owned()),
        1 => Just("127.0.0.1".to_owned()),
        1 => Just("LocalHost".to_owned()),
        1 => "[a-zA-Z0-9._%@:\\[\\]-]{0,12}",
    ];
    let port = prop::option::weighted(0.3, "[0-9]{0,6}");
    let path = "(/[a-zA-Z0-9.%;:@<|'-]{0,6}){0,4}";
    let query = prop::option::weighted(0.3, "[a-z=&%@/?'`]{0,8}");
    let fragment = prop::option::weighted(0.1, "[a-z]{0,3}");
    let texts = (scheme, host, port, path, query, fragment).prop_map(|(s, h, p, path, q, f)| {
        let mut text = s + &h;
        for (mark, part) in [(':', p), ('?', q), ('#', f)] {
            if mark == '?' {
                text += &path;
            }
            if let Some(part) = part {
                text.push(mark);
                text += &part;
            }
        }
        text
    });
    let accepted = Cell::new(0u32);
    let mut runner = TestRunner::new(Config::with_cases(2000));
    runner
        .run(&texts, |text| {
            let uri = match RedirectUri::parse(&text) {
                Ok(uri) => uri,
                // The checks on the text must name every cause; the comparison with the
                // parser's reading is a safety net that nothing generated here should reach.
                Err(RedirectError::NotCanonical) => {
                    return Err(TestCaseError::fail(format!("{text}: no specific cause")));
                }
                Err(_) => return Ok(()),
            };
            accepted.set(accepted.get() + 1);
            let canonical = Url::parse(uri.url().as_str()).unwrap();
            prop_assert_eq!(&canonical, uri.url());
            let authority = text
                .split("://")
                .nth(1)
                .unwrap()
                .split(['/', '?'])
                .next()
                .unwrap();
            let authority = authority.to_ascii_lowercase();
            prop_assert!(
                authority == uri.host() || authority.starts_with(&format!("{}:", uri.host())),
                "{} read as host {}",
                text,
                uri.host()
            );
            let path = uri.url().path();
            prop_assert!(path.starts_with('/') && !path.contains("/../") && !path.contains("//"));
            let pattern = RedirectPattern::exact(&uri);
            prop_assert!(pattern.matches(&uri));
            let again: RedirectPattern = pattern.to_string().parse().unwrap();
            prop_assert_eq!(again, pattern);
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() > 200,
        "only {} of 2000 accepted",
        accepted.get()
    );
}

proptest! {
    /// A domain pattern matches a host only at a label boundary.
    #[test]
    fn domain_patterns_match_at_label_boundaries(
        sub in "([a-z]{1,5}\\.){0,2}",
        glue in "[a-z]{0,3}",
        tail in "(\\.[a-z]{1,5})?",
    ) {
        let pattern = RedirectPattern::parse("example.com").unwrap();
        let host = format!("{sub}{glue}example.com{tail}");
        let uri = RedirectUri::parse(&format!("https://{host}/cb")).unwrap();
        let expected = glue.is_empty() && tail.is_empty();
        prop_assert_eq!(pattern.matches(&uri), expected, "{}", host);
    }
}
