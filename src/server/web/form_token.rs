//! The per-form CSRF token: every form of the pages carries it in a hidden `csrf` field, and a
//! post without it, or with another session's, is refused with 403 before any handler runs.
//!
//! The token is derived from the session cookie (SHA-256 of a label and the cookie's value), so
//! it is bound to the session, needs no storage and is the same on every node; it reveals
//! nothing of the cookie. Before sign-in there is no session: the sign-in form's token is bound
//! to a pre-session cookie ([`FORM_COOKIE`]), set with the first page that has no session. This
//! adds to the same-origin rule ([`SameOriginLayer`](crate::server::SameOriginLayer)), which
//! refuses another site's posts but not a post forged from a page of this site.

use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The pre-session cookie the sign-in form's token is bound to.
pub const FORM_COOKIE: &str = "agent_auth_form";

/// The form field that carries the token.
pub const FORM_FIELD: &str = "csrf";

/// The token of the forms of one session (or pre-session), as put in each form's hidden field.
#[derive(Clone, PartialEq, Eq)]
pub struct FormToken(String);

impl std::fmt::Debug for FormToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormToken(..)")
    }
}

impl FormToken {
    /// The token bound to the cookie value `secret`.
    pub fn for_secret(secret: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"agent-auth form token v1\0");
        hash.update(secret.as_bytes());
        Self(hex::encode(hash.finalize()))
    }

    /// The value of the hidden field.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `sent` is this token (compared in constant time).
    pub fn matches(&self, sent: &str) -> bool {
        self.0.as_bytes().ct_eq(sent.as_bytes()).into()
    }
}

impl<S: Send + Sync> ::axum::extract::FromRequestParts<S> for FormToken {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<FormToken>().cloned().ok_or_else(|| {
            tracing::error!("a page needs the form-token middleware around it");
            (StatusCode::INTERNAL_SERVER_ERROR, "page misconfigured").into_response()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_bound_to_the_secret_and_hides_it() {
        let one = FormToken::for_secret("a".repeat(64).as_str());
        let other = FormToken::for_secret("b".repeat(64).as_str());
        assert_ne!(one, other);
        assert!(one.matches(one.as_str()));
        assert!(!one.matches(other.as_str()));
        assert!(!one.matches(""));
        assert!(!one.as_str().contains(&"a".repeat(8)));
        assert_eq!(format!("{one:?}"), "FormToken(..)");
    }
}
