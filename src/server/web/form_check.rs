//! Checking the forms' tokens ([`FormToken`]): the middleware in front of every page.

use ::axum::body::Body;
use ::axum::extract::Request;
use ::axum::middleware::Next;
use ::axum::response::Response;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderValue, Method, StatusCode};

use super::form_token::{FORM_COOKIE, FORM_FIELD, FormToken};
use super::message;
use crate::server::sessions::{SESSION_COOKIE, cookie_named};

/// A form post's body is read whole to find its token: forms are small.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The cookie the forms of this request are bound to: the session's, else the pre-session one.
fn binding(headers: &http::HeaderMap) -> Option<&str> {
    cookie_named(headers, SESSION_COOKIE)
        .or_else(|| cookie_named(headers, FORM_COOKIE))
        .filter(|secret| !secret.is_empty())
}

fn fresh_secret() -> Option<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).ok()?;
    Some(hex::encode(secret))
}

/// The value of the field `csrf` in a form body, if any.
fn sent_token(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == FORM_FIELD)
        .map(|(_, value)| value.into_owned())
}

fn refused(reason: &str) -> Response {
    tracing::info!(reason, "form refused");
    message::page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form has expired or was not sent from this site. Go back, reload the page and try again.",
    )
}

/// What a form's token may be bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding {
    /// The session, or before sign-in the pre-session cookie (set `Secure` when `secure`).
    SessionOrForm { secure: bool },
    /// The session only: forms for signed-in people (the callback receiver's connect form).
    #[cfg_attr(not(feature = "callback"), allow(dead_code))]
    Session,
}

/// The middleware: on a safe method, puts the request's [`FormToken`] in its extensions (and,
/// with [`Binding::SessionOrForm`], sets the pre-session cookie when there is no cookie to
/// bind to); on any other, refuses with 403 unless the body is a form
/// (`application/x-www-form-urlencoded`) whose `csrf` field is the token of the request's
/// cookie.
pub(crate) async fn check(bound_to: Binding, mut request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let binding = |headers| match bound_to {
        Binding::SessionOrForm { .. } => binding(headers),
        Binding::Session => cookie_named(headers, SESSION_COOKIE).filter(|s| !s.is_empty()),
    };
    if safe {
        let mut new_cookie = None;
        let token = match (binding(request.headers()), bound_to) {
            (Some(secret), _) => FormToken::for_secret(secret),
            (None, Binding::Session) => return next.run(request).await,
            (None, Binding::SessionOrForm { secure }) => {
                let Some(secret) = fresh_secret() else {
                    return message::unavailable();
                };
                let token = FormToken::for_secret(&secret);
                new_cookie = Some((secret, secure));
                token
            }
        };
        request.extensions_mut().insert(token);
        let mut response = next.run(request).await;
        if let Some((secret, secure)) = new_cookie {
            let secure = if secure { "; Secure" } else { "" };
            let cookie = format!("{FORM_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax{secure}");
            if let Ok(value) = HeaderValue::try_from(cookie) {
                response.headers_mut().append(SET_COOKIE, value);
            }
        }
        return response;
    }

    let Some(expected) = binding(request.headers()).map(FormToken::for_secret) else {
        return refused("no session or form cookie");
    };
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return refused("not a form");
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = ::axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return message::page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form sent more than this server accepts.",
        );
    };
    match sent_token(&bytes) {
        Some(sent) if expected.matches(&sent) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(expected);
            next.run(request).await
        }
        Some(_) => refused("token of another session"),
        None => refused("no token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_found_among_others() {
        assert_eq!(sent_token(b"a=1&csrf=x%2By&b=2").as_deref(), Some("x+y"));
        assert_eq!(sent_token(b"a=1&b=2"), None);
    }
}
