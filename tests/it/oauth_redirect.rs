//! The redirect-URI table (issue #20, item 3): hostile URIs beside legitimate ones, drawn from the
//! published attacks on redirect matching, each with the verdict the code must reach and why.
//! Every verdict is computed by `RedirectUri::parse` and `allowed`; the table only states what
//! they must say.
#![cfg(feature = "oauth")]

use tower_agent_auth::oauth::redirect::{RedirectError, RedirectPattern, RedirectUri, allowed};

/// The allowlist most rows are checked against: one of each kind of pattern.
const ALLOWLIST: &[&str] = &[
    "https://example.com/cb",
    "https://example.com/app/*",
    "https://example.com/q?tenant=1",
    "https://example.com:8443/alt",
    "trusted.example.net",
    "http://127.0.0.1/cb",
    "http://[::1]/cb",
    "http://localhost/callback",
    "https://localhost:8443/tls",
];

/// A root wildcard: the pattern Data Machine matched against `example.com.evil`.
const ROOT: &[&str] = &["https://example.com/*"];
/// A loopback path prefix.
const LOOPBACK_PREFIX: &[&str] = &["http://127.0.0.1/native/*"];

enum Expect {
    /// Valid and on the list.
    Allowed,
    /// Valid, but no pattern covers it.
    NotAllowed,
    /// Refused by the parser, for this reason.
    Refused(fn(&RedirectError) -> bool),
}
use Expect::{Allowed, NotAllowed};

macro_rules! refused {
    ($variant:ident) => {
        Expect::Refused(|e| matches!(e, RedirectError::$variant { .. }))
    };
}

struct Case {
    patterns: &'static [&'static str],
    uri: &'static str,
    expect: Expect,
    why: &'static str,
}

const fn case(uri: &'static str, expect: Expect, why: &'static str) -> Case {
    with(ALLOWLIST, uri, expect, why)
}

const fn with(
    patterns: &'static [&'static str],
    uri: &'static str,
    expect: Expect,
    why: &'static str,
) -> Case {
    Case {
        patterns,
        uri,
        expect,
        why,
    }
}

fn table() -> Vec<Case> {
    vec![
        // Legitimate.
        case("https://example.com/cb", Allowed, "exact match"),
        case(
            "https://example.com:443/cb",
            Allowed,
            "an explicit default port is the same origin",
        ),
        case(
            "HTTPS://EXAMPLE.COM/cb",
            Allowed,
            "scheme and host are case-insensitive",
        ),
        case(
            "https://Example.Com/app/x",
            Allowed,
            "host case does not matter under a prefix either",
        ),
        case(
            "https://example.com/app",
            Allowed,
            "a prefix pattern covers its own path",
        ),
        case(
            "https://example.com/app/",
            Allowed,
            "…with a trailing slash",
        ),
        case(
            "https://example.com/app/oauth/done",
            Allowed,
            "…and anything below it",
        ),
        case(
            "https://example.com/app/done?x=1&y=%2F",
            Allowed,
            "a prefix pattern allows any query",
        ),
        case(
            "https://example.com/app/a;v=1",
            Allowed,
            "`;` parameters are ordinary path text",
        ),
        case(
            "https://example.com/q?tenant=1",
            Allowed,
            "exact match, query included",
        ),
        case(
            "https://example.com:8443/alt",
            Allowed,
            "exact match on a non-default port",
        ),
        case(
            "https://trusted.example.net/",
            Allowed,
            "a domain pattern covers the domain",
        ),
        case(
            "https://a.b.trusted.example.net/cb?x",
            Allowed,
            "…and its subdomains, any path and query",
        ),
        case(
            "https://trusted.example.net:443/x",
            Allowed,
            "…on the default port, written or not",
        ),
        case("http://127.0.0.1/cb", Allowed, "registered loopback URI"),
        case(
            "http://127.0.0.1:51234/cb",
            Allowed,
            "RFC 8252: loopback on any port",
        ),
        case(
            "http://[::1]:8080/cb",
            Allowed,
            "RFC 8252: IPv6 loopback on any port",
        ),
        case(
            "http://localhost:3000/callback",
            Allowed,
            "RFC 8252: localhost on any port",
        ),
        case(
            "http://LOCALHOST:3000/callback",
            Allowed,
            "localhost is a host: case-insensitive",
        ),
        case(
            "https://localhost:8443/tls",
            Allowed,
            "https loopback, exact port",
        ),
        with(
            ROOT,
            "https://example.com/anything/at/all",
            Allowed,
            "a root wildcard covers every path",
        ),
        with(ROOT, "https://example.com", Allowed, "an empty path is `/`"),
        with(
            ROOT,
            "https://example.com?@evil.com",
            Allowed,
            "`@evil.com` is the query; the host is example.com",
        ),
        with(
            LOOPBACK_PREFIX,
            "http://127.0.0.1:9999/native/cb",
            Allowed,
            "a loopback prefix on any port",
        ),
        //
        // Look-alike hosts.
        with(
            ROOT,
            "https://example.com.evil/x",
            NotAllowed,
            "a wildcard does not extend the host (Data Machine's bug)",
        ),
        case(
            "https://example.com.evil/cb",
            NotAllowed,
            "suffix appended to the host",
        ),
        case(
            "https://EXAMPLE.COM.evil/app/x",
            NotAllowed,
            "suffix appended, mixed case",
        ),
        case(
            "https://evilexample.com/cb",
            NotAllowed,
            "prefix glued to the host",
        ),
        case(
            "https://eviltrusted.example.net/",
            NotAllowed,
            "domain patterns match at a label boundary",
        ),
        case(
            "https://trusted.example.net.evil.com/",
            NotAllowed,
            "the domain must be the suffix",
        ),
        case(
            "https://example.net/",
            NotAllowed,
            "a domain pattern does not cover its parent",
        ),
        case(
            "https://trusted-example.net/",
            NotAllowed,
            "hyphen, not a dot",
        ),
        case(
            "https://example.com%2eevil/cb",
            refused!(InvalidHost),
            "a percent-encoded host",
        ),
        case(
            "https://ex%61mple.com/cb",
            refused!(InvalidHost),
            "a percent-encoded host that decodes to the real one",
        ),
        case(
            "https://example.com./cb",
            refused!(InvalidHost),
            "trailing dot: another string for the same name",
        ),
        // Userinfo and the `@` family.
        case(
            "https://example.com@evil.com/cb",
            refused!(Userinfo),
            "the host is evil.com",
        ),
        case(
            "https://user:pass@example.com/cb",
            refused!(Userinfo),
            "credentials in the URI",
        ),
        case(
            "https://@example.com/cb",
            refused!(Userinfo),
            "an empty userinfo is still userinfo",
        ),
        case(
            "https://example.com%40evil.com/cb",
            refused!(InvalidHost),
            "an encoded `@` in the host",
        ),
        case(
            "https://example.com#@evil.com",
            refused!(Fragment),
            "a parser that skips `#` finds evil.com",
        ),
        case(
            "https://example.com/cb#",
            refused!(Fragment),
            "even an empty fragment",
        ),
        case(
            "https://example.com?@evil.com",
            NotAllowed,
            "the host is example.com, but no pattern covers `/`",
        ),
        // Backslashes and parser differentials.
        case(
            "https://example.com\\@evil.com/cb",
            refused!(Backslash),
            "WHATWG reads `\\` as `/`, RFC 3986 parsers do not",
        ),
        case(
            "https:\\\\example.com/cb",
            refused!(Backslash),
            "backslashes for slashes",
        ),
        case(
            "https://example.com\\cb",
            refused!(Backslash),
            "a backslash in place of the path's slash",
        ),
        case(
            "https:/example.com/cb",
            refused!(NoAuthority),
            "one slash: WHATWG repairs it, others do not",
        ),
        case("https:example.com/cb", refused!(NoAuthority), "no slashes"),
        case(
            "https:///example.com/cb",
            refused!(EmptyHost),
            "three slashes: WHATWG finds a host, others none",
        ),
        case("//example.com/cb", refused!(NotAbsolute), "scheme-relative"),
        case("/cb", refused!(NotAbsolute), "relative"),
        case("example.com/cb", refused!(NotAbsolute), "no scheme"),
        case(
            "https://exam\tple.com/cb",
            refused!(ControlOrWhitespace),
            "a tab the URL parser would drop",
        ),
        case(
            "https://example.com/c\nb",
            refused!(ControlOrWhitespace),
            "a newline the URL parser would drop",
        ),
        case(
            "https://example.com/cb\r\n",
            refused!(ControlOrWhitespace),
            "trailing CRLF",
        ),
        case(
            " https://example.com/cb",
            refused!(ControlOrWhitespace),
            "leading space the URL parser would trim",
        ),
        case(
            "https://example.com/cb\u{0}",
            refused!(ControlOrWhitespace),
            "a NUL byte",
        ),
        case(
            "https://example.com/cb\u{3000}",
            refused!(ControlOrWhitespace),
            "Unicode whitespace",
        ),
        case(
            "http://127.1/cb",
            refused!(NonCanonicalHost),
            "short IPv4: the parser reads 127.0.0.1",
        ),
        case(
            "http://0x7f.0.0.1/cb",
            refused!(NonCanonicalHost),
            "hex IPv4",
        ),
        case(
            "http://2130706433/cb",
            refused!(NonCanonicalHost),
            "decimal IPv4",
        ),
        case(
            "http://0177.0.0.1/cb",
            refused!(NonCanonicalHost),
            "octal IPv4",
        ),
        case(
            "http://[0:0:0:0:0:0:0:1]/cb",
            refused!(NonCanonicalHost),
            "long-form IPv6",
        ),
        case(
            "http://[::ffff:127.0.0.1]/cb",
            refused!(NonCanonicalHost),
            "IPv4-mapped IPv6",
        ),
        // Encoded dots and slashes, traversal.
        case(
            "https://example.com/app/../admin",
            refused!(DotSegment),
            "traversal out of the prefix",
        ),
        case(
            "https://example.com/app/./x",
            refused!(DotSegment),
            "a `.` segment",
        ),
        case(
            "https://example.com/app/..;/admin",
            refused!(DotSegment),
            "Tomcat reads `..;` as `..`",
        ),
        case(
            "https://example.com/app/%2e%2e/admin",
            refused!(EncodedPathCharacter),
            "encoded traversal",
        ),
        case(
            "https://example.com/app/%2E%2E/admin",
            refused!(EncodedPathCharacter),
            "…upper case",
        ),
        case(
            "https://example.com/app/.%2e/admin",
            refused!(EncodedPathCharacter),
            "…half encoded",
        ),
        case(
            "https://example.com/app%2f..%2fadmin",
            refused!(EncodedPathCharacter),
            "encoded slashes",
        ),
        case(
            "https://example.com/app/%252e%252e/admin",
            refused!(EncodedPathCharacter),
            "double encoding",
        ),
        case(
            "https://example.com/app%252f..%252fadmin",
            refused!(EncodedPathCharacter),
            "double-encoded slashes",
        ),
        case(
            "https://example.com/app/%5c..%5cadmin",
            refused!(EncodedPathCharacter),
            "encoded backslashes",
        ),
        case(
            "https://example.com/app/%0d%0aSet-Cookie:x",
            refused!(EncodedPathCharacter),
            "encoded CRLF",
        ),
        case(
            "https://example.com/app/%zz",
            refused!(MalformedPercent),
            "a `%` that is no escape",
        ),
        case(
            "https://example.com//evil.com/app",
            refused!(EmptyPathSegment),
            "`//evil.com` read later as a host",
        ),
        case(
            "https://example.com/app//evil.com",
            refused!(EmptyPathSegment),
            "…below a prefix",
        ),
        case(
            "https://example.com/app/<script>",
            refused!(InvalidCharacter),
            "characters a parser would encode",
        ),
        case(
            "https://example.com/cb?x=\"y\"",
            refused!(InvalidCharacter),
            "…in the query",
        ),
        case(
            "https://example.com/app/*",
            refused!(Wildcard),
            "a pattern presented as a URI",
        ),
        // Paths and queries that differ.
        case(
            "https://example.com/cb/",
            NotAllowed,
            "trailing slash against an exact pattern",
        ),
        case(
            "https://example.com/CB",
            NotAllowed,
            "paths are case-sensitive",
        ),
        case(
            "https://example.com/%63b",
            NotAllowed,
            "an encoded letter is another path as written",
        ),
        case(
            "https://example.com/cb?x=1",
            NotAllowed,
            "an exact pattern fixes the query",
        ),
        case(
            "https://example.com/q?tenant=2",
            NotAllowed,
            "another query",
        ),
        case(
            "https://example.com/q",
            NotAllowed,
            "the registered query missing",
        ),
        case(
            "https://example.com/appx",
            NotAllowed,
            "a prefix matches at a `/` boundary only",
        ),
        case("https://example.com/ap", NotAllowed, "above the prefix"),
        case(
            "https://example.com/",
            NotAllowed,
            "the root of a host with a deeper prefix",
        ),
        // IDN and homoglyphs.
        case(
            "https://ex\u{430}mple.com/cb",
            refused!(NonAscii),
            "Cyrillic а in place of a",
        ),
        case(
            "https://\u{ff45}xample.com/cb",
            refused!(NonAscii),
            "fullwidth ｅ, which IDNA maps to e",
        ),
        case(
            "https://example.com\u{3002}evil/cb",
            refused!(NonAscii),
            "an ideographic full stop IDNA maps to `.`",
        ),
        case(
            "https://xn--exmple-4nf.com/cb",
            refused!(PunycodeHost),
            "the punycode of the Cyrillic look-alike",
        ),
        case(
            "https://trusted.xn--exmple-cua.net/",
            refused!(PunycodeHost),
            "punycode in any label",
        ),
        case(
            "https://example.com/caf\u{e9}",
            refused!(NonAscii),
            "an unencoded non-ASCII path",
        ),
        // Ports.
        case("https://example.com:444/cb", NotAllowed, "another port"),
        case(
            "https://example.com:8444/alt",
            NotAllowed,
            "another non-default port",
        ),
        case(
            "https://example.com/alt",
            NotAllowed,
            "the registered non-default port missing",
        ),
        case(
            "https://trusted.example.net:8443/",
            NotAllowed,
            "domain patterns are for the default port",
        ),
        case(
            "https://localhost:9443/tls",
            NotAllowed,
            "https loopback keeps its port",
        ),
        with(
            ROOT,
            "https://example.com:8443/x",
            NotAllowed,
            "a wildcard keeps the port",
        ),
        case(
            "https://example.com:/cb",
            refused!(InvalidPort),
            "an empty port",
        ),
        case(
            "https://example.com:0443/cb",
            refused!(InvalidPort),
            "leading zero: the parser reads 443",
        ),
        case(
            "https://example.com:99999/cb",
            refused!(InvalidPort),
            "out of range",
        ),
        case(
            "https://example.com:0/cb",
            refused!(InvalidPort),
            "port zero",
        ),
        // Schemes.
        case(
            "http://example.com/cb",
            refused!(InsecureHttp),
            "http off loopback",
        ),
        case(
            "http://trusted.example.net/",
            refused!(InsecureHttp),
            "domain patterns are https only",
        ),
        case("javascript:alert(1)", refused!(UnsupportedScheme), "script"),
        case(
            "javascript://example.com/%0aalert(1)",
            refused!(UnsupportedScheme),
            "script dressed as a URL",
        ),
        case(
            "JaVaScRiPt:alert(1)",
            refused!(UnsupportedScheme),
            "…in mixed case",
        ),
        case(
            "data:text/html,<script>alert(1)</script>",
            refused!(UnsupportedScheme),
            "data URI",
        ),
        case(
            "file:///etc/passwd",
            refused!(UnsupportedScheme),
            "local file",
        ),
        case(
            "ftp://example.com/cb",
            refused!(UnsupportedScheme),
            "not http",
        ),
        case(
            "wss://example.com/cb",
            refused!(UnsupportedScheme),
            "not http",
        ),
        case(
            "com.example.app:/callback",
            refused!(UnsupportedScheme),
            "private-use schemes are refused for now",
        ),
        with(
            ROOT,
            "http://example.com/x",
            refused!(InsecureHttp),
            "a wildcard does not downgrade the scheme",
        ),
        // Loopback look-alikes.
        case(
            "https://127.0.0.1/cb",
            NotAllowed,
            "loopback leniency is for the registered scheme, http",
        ),
        case(
            "http://127.0.0.1:51234/cb/",
            NotAllowed,
            "any port, but the same path",
        ),
        case(
            "http://127.0.0.1:51234/other",
            NotAllowed,
            "any port, but not any path",
        ),
        case(
            "http://127.0.0.1:51234/cb?x=1",
            NotAllowed,
            "any port, but the same query",
        ),
        case(
            "http://localhost:3000/cb",
            NotAllowed,
            "loopback hosts are not interchangeable",
        ),
        case("http://[::1]:8080/callback", NotAllowed, "…either way"),
        case(
            "http://127.0.0.2/cb",
            refused!(InsecureHttp),
            "only 127.0.0.1 is loopback here",
        ),
        case(
            "http://localhost.evil.com/callback",
            refused!(InsecureHttp),
            "localhost as a subdomain",
        ),
        case(
            "http://127.0.0.1.evil.com/cb",
            refused!(InsecureHttp),
            "an IP as a subdomain",
        ),
        case(
            "https://localhost.evil.com/callback",
            NotAllowed,
            "…over https, a valid URI, not listed",
        ),
        case(
            "http://localhost./callback",
            refused!(InvalidHost),
            "trailing dot on localhost",
        ),
        with(
            LOOPBACK_PREFIX,
            "http://127.0.0.1:9999/nativex",
            NotAllowed,
            "a loopback prefix at a boundary",
        ),
        // Size.
        case("", refused!(Empty), "nothing"),
    ]
}

#[test]
fn the_table() {
    let table = table();
    let mut failures = Vec::new();
    for case in &table {
        let patterns: Vec<RedirectPattern> = case
            .patterns
            .iter()
            .map(|p| p.parse().unwrap_or_else(|e| panic!("pattern {p}: {e}")))
            .collect();
        let got = match RedirectUri::parse(case.uri) {
            Ok(uri) if allowed(&patterns, &uri) => "allowed".to_owned(),
            Ok(_) => "not allowed".to_owned(),
            Err(e) => format!("refused: {e} ({e:?})"),
        };
        let ok = match (&case.expect, RedirectUri::parse(case.uri)) {
            (Allowed, Ok(uri)) => allowed(&patterns, &uri),
            (NotAllowed, Ok(uri)) => !allowed(&patterns, &uri),
            (Expect::Refused(is), Err(e)) => is(&e),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{:?}: got {got}; expected because {}",
                case.uri, case.why
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let hostile = table
        .iter()
        .filter(|c| !matches!(c.expect, Allowed))
        .count();
    assert!(hostile >= 40, "only {hostile} hostile rows");
    assert!(table.len() - hostile >= 10);
}

/// An empty allowlist allows nothing, even a URI that is fine on its own.
#[test]
fn no_patterns_no_redirect() {
    let uri = RedirectUri::parse("https://example.com/cb").unwrap();
    assert!(!allowed(&[], &uri));
}

/// The token endpoint compares the `redirect_uri` it gets with the authorize request's byte for
/// byte, even where both are on the allowlist and read the same.
#[test]
fn the_original_text_is_kept_for_the_token_endpoint() {
    let at_authorize = RedirectUri::parse("https://Example.com:443/cb").unwrap();
    let at_token = RedirectUri::parse("https://example.com/cb").unwrap();
    assert_eq!(at_authorize.url(), at_token.url());
    assert_ne!(at_authorize, at_token);
    assert_eq!(at_authorize.as_str(), "https://Example.com:443/cb");
}

/// What a dynamically registered client's `redirect_uris` become: exact patterns, with the loopback
/// port leniency and nothing else.
#[test]
fn registered_uris_as_exact_patterns() {
    let registered: Vec<RedirectPattern> =
        ["http://127.0.0.1:33418/callback", "https://app.example/cb"]
            .iter()
            .map(|u| RedirectPattern::exact(&RedirectUri::parse(u).unwrap()))
            .collect();
    let check = |uri: &str| allowed(&registered, &RedirectUri::parse(uri).unwrap());
    assert!(check("http://127.0.0.1:40000/callback"));
    assert!(check("https://app.example/cb"));
    assert!(!check("https://app.example/cb/x"));
    assert!(!check("https://app.example:444/cb"));
}

/// Every pattern of the table's lists reads back from its canonical text.
#[test]
fn table_patterns_round_trip() {
    for text in ALLOWLIST.iter().chain(ROOT).chain(LOOPBACK_PREFIX) {
        let pattern: RedirectPattern = text.parse().unwrap();
        assert_eq!(pattern.to_string(), *text, "already canonical");
        assert_eq!(
            pattern.to_string().parse::<RedirectPattern>().unwrap(),
            pattern
        );
    }
}
