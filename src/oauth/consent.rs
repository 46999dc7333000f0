//! The consent page, and the token that binds its form to the session and to the request.
//!
//! The form's hidden `csrf` field is `issued.mac`: an HMAC-SHA-256, under the server's consent
//! key, of when it was issued, who is signed in, the session's cookie, and every parameter of
//! the authorization request. A form posted from another session, for other parameters (another
//! redirect URI, another scope, another challenge), or older than [`FORM_LIFETIME`] is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use ::axum::response::Response;
use askama::Template;
use http::StatusCode;

use crate::principal::UserId;
use crate::server::web::{Chrome, render};

/// How long a consent form may be posted after it was shown, in seconds.
pub(crate) const FORM_LIFETIME: i64 = 600;

/// Who the form was shown to: the person, and the SHA-256 of their session cookie (if the
/// session has one the server knows the name of).
pub(crate) struct Binding {
    pub(crate) user: UserId,
    pub(crate) session: Option<[u8; 32]>,
}

impl Binding {
    pub(crate) fn new(user: UserId, cookie: Option<&str>) -> Self {
        Self {
            user,
            session: cookie.map(|c| Sha256::digest(c.as_bytes()).into()),
        }
    }
}

/// The value of the cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
}

fn mac(key: &[u8; 32], issued: i64, binding: &Binding, fields: &[(&str, Option<&str>)]) -> Vec<u8> {
    // Hmac accepts keys of any length: 32 bytes never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    // Length-prefixed, so no two different inputs write the same bytes.
    fn write(mac: &mut Hmac<Sha256>, part: &[u8]) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    write(&mut mac, b"tower-agent-auth consent v1");
    write(&mut mac, &issued.to_be_bytes());
    write(&mut mac, binding.user.as_str().as_bytes());
    write(
        &mut mac,
        binding.session.as_ref().map_or(&[][..], |s| &s[..]),
    );
    for (name, value) in fields {
        write(&mut mac, name.as_bytes());
        match value {
            Some(value) => write(&mut mac, value.as_bytes()),
            // Absent differs from empty.
            None => mac.update(&u64::MAX.to_be_bytes()),
        }
    }
    mac.finalize().into_bytes().to_vec()
}

/// The token for a form shown at `now` (Unix seconds).
pub(crate) fn token(
    key: &[u8; 32],
    now: i64,
    binding: &Binding,
    fields: &[(&str, Option<&str>)],
) -> String {
    format!(
        "{now}.{}",
        URL_SAFE_NO_PAD.encode(mac(key, now, binding, fields))
    )
}

/// Whether `presented` is a token for this binding and these fields, issued within
/// [`FORM_LIFETIME`] of `now` (compared in constant time).
pub(crate) fn verify(
    key: &[u8; 32],
    presented: &str,
    now: i64,
    binding: &Binding,
    fields: &[(&str, Option<&str>)],
) -> bool {
    let Some((issued, presented_mac)) = presented.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    if !(now - FORM_LIFETIME..=now + 5).contains(&issued) {
        return false;
    }
    let Ok(presented_mac) = URL_SAFE_NO_PAD.decode(presented_mac) else {
        return false;
    };
    let expected = mac(key, issued, binding, fields);
    subtle::ConstantTimeEq::ct_eq(&expected[..], &presented_mac[..]).into()
}

/// The consent page, `templates/oauth_consent.html`: every value escaped by the template.
#[derive(Template)]
#[template(path = "oauth_consent.html")]
pub(crate) struct Consent<'a> {
    /// The layout's data: no navigation, no other form on the page.
    pub(crate) chrome: Chrome,
    /// Who is signed in and answering.
    pub(crate) person: &'a str,
    /// The client's name.
    pub(crate) client_name: &'a str,
    /// For a metadata document's client, the host of its URL: who vouches for it.
    pub(crate) client_host: Option<&'a str>,
    /// What kind of client, in words.
    pub(crate) client_kind: &'a str,
    /// The agent the client will act as, in words.
    pub(crate) agent: String,
    /// Whose agent it is.
    pub(crate) owner: &'a str,
    /// Where the person will be sent back (`None`: nowhere, for a device).
    pub(crate) redirect_host: Option<&'a str>,
    /// The user code the device shows, for the person to check (the device flow).
    pub(crate) user_code: Option<&'a str>,
    /// What may be granted, each a checkbox ticked at first.
    pub(crate) capabilities: &'a [String],
    /// What was asked for and cannot be granted (beyond the owner's role or the agent's
    /// policy), listed for the person to see.
    pub(crate) unavailable: &'a [String],
    /// How long access lasts, in words.
    pub(crate) lifetime: String,
    /// Where the form posts.
    pub(crate) action: &'a str,
    /// The hidden fields: the request's parameters and the CSRF token.
    pub(crate) hidden: Vec<(&'a str, String)>,
}

impl Consent<'_> {
    /// The page, `200`.
    pub(crate) fn response(&self) -> Response {
        render(StatusCode::OK, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn binding(cookie: &str) -> Binding {
        Binding::new(UserId::from("alice"), Some(cookie))
    }

    #[test]
    fn a_token_is_bound_to_the_session_the_fields_and_the_time() {
        let fields = [("client_id", Some("c_1")), ("scope", Some("a:b"))];
        let token = token(&KEY, 1000, &binding("s1"), &fields);
        assert!(verify(&KEY, &token, 1000, &binding("s1"), &fields));
        assert!(verify(
            &KEY,
            &token,
            1000 + FORM_LIFETIME,
            &binding("s1"),
            &fields
        ));
        assert!(!verify(
            &KEY,
            &token,
            1001 + FORM_LIFETIME,
            &binding("s1"),
            &fields
        ));
        assert!(!verify(&KEY, &token, 1000, &binding("s2"), &fields));
        let other = [("client_id", Some("c_1")), ("scope", Some("a:*"))];
        assert!(!verify(&KEY, &token, 1000, &binding("s1"), &other));
        let absent = [("client_id", Some("c_1")), ("scope", None)];
        assert!(!verify(&KEY, &token, 1000, &binding("s1"), &absent));
        assert!(!verify(&[8; 32], &token, 1000, &binding("s1"), &fields));
        let mallory = Binding::new(UserId::from("mallory"), Some("s1"));
        assert!(!verify(&KEY, &token, 1000, &mallory, &fields));
        assert!(!verify(&KEY, "garbage", 1000, &binding("s1"), &fields));
        // The time is in the MAC: moving it invalidates the token.
        let (_, mac) = token.split_once('.').unwrap();
        assert!(!verify(
            &KEY,
            &format!("1001.{mac}"),
            1001,
            &binding("s1"),
            &fields
        ));
    }

    #[test]
    fn the_page_escapes_everything() {
        let consent = Consent {
            chrome: Chrome::anonymous("Allow access", None),
            person: "<u>alice</u>",
            client_name: "<script>alert(1)</script>",
            client_host: Some("<b>evil</b>.example"),
            client_kind: "registered client",
            agent: "a new agent".into(),
            owner: "alice",
            redirect_host: Some("127.0.0.1"),
            user_code: Some("<b>"),
            capabilities: &["posts:read".into()],
            unavailable: &["\"><img>".into()],
            lifetime: "1 hour".into(),
            action: "/oauth/authorize",
            hidden: vec![("state", "\"><script>".into())],
        };
        let html = consent.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<u>"), "{html}");
        assert!(
            html.contains("sent back to <strong>127.0.0.1</strong>"),
            "{html}"
        );
        let device = Consent {
            redirect_host: None,
            user_code: Some("BCDF-GHJK"),
            ..consent
        };
        let html = device.render().unwrap();
        assert!(!html.contains("sent back"), "{html}");
        assert!(
            html.contains("shows the code <strong>BCDF-GHJK</strong>"),
            "{html}"
        );
        assert!(
            html.contains("&#60;b&#62;evil&#60;/b&#62;.example"),
            "{html}"
        );
        assert!(html.contains(r#"name="capability" value="posts:read" checked"#));
        assert!(html.contains(r#"value="deny""#));
    }
}
