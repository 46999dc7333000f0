//! The token endpoint's successful answer: 200 JSON with `Cache-Control: no-store`.

use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::error::no_store_json;
use crate::token::RawToken;

/// A successful answer of the token endpoint: a Bearer access token, its truthful lifetime,
/// its scope, and a refresh token. Its `Debug` shows no secret.
pub struct TokenResponse {
    access_token: RawToken,
    expires_in: u64,
    scope: String,
    refresh_token: Option<Zeroizing<String>>,
    extra: Map<String, Value>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// A Bearer access token living `expires_in` seconds more, for `scope`.
    pub fn bearer(access_token: RawToken, expires_in: u64, scope: impl Into<String>) -> Self {
        Self {
            access_token,
            expires_in,
            scope: scope.into(),
            refresh_token: None,
            extra: Map::new(),
        }
    }

    /// With a refresh token.
    pub fn refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// With another field (`issued_token_type` for token exchange, …).
    pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut body = json!({
            "access_token": self.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(refresh) = &self.refresh_token {
            body["refresh_token"] = Value::from(refresh.as_str());
        }
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        no_store_json(StatusCode::OK, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_shows_no_secret() {
        let response = TokenResponse::bearer(RawToken::from_secret("acme_x_secret"), 60, "a:b")
            .refresh_token("rt_secret");
        let debug = format!("{response:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
