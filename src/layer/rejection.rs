//! The layer's answers: [`Rejection`] (how the layer itself refuses a request) and
//! [`PrincipalRejection`] (why a handler or route layer could not get the principal it needs),
//! each with its RFC 6750 status, body and `WWW-Authenticate` challenge.
//!
//! A `401 invalid_token` response carries the [`InvalidReason`] in its extensions, so an outer
//! logging or audit layer can tell operators why a token was refused; the client never sees it.

use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Extensions, HeaderValue, Response, StatusCode};

use super::challenge::{Challenge, LayerMarker};
use crate::error::InvalidReason;
use crate::principal::Principal;

/// An authentication failure, turned into a response by [`Rejection::response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    MissingCredentials,
    InvalidRequest,
    InvalidToken(InvalidReason),
    /// A bearer token of another application (its prefix is not ours): what a client can see
    /// for itself, so the body says it.
    ForeignToken,
    InsufficientScope(Box<str>),
    Unavailable,
    /// The resolver's own data is bad.
    ServerError,
    MissingLayer,
}

impl Rejection {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) | Self::ForeignToken => {
                StatusCode::UNAUTHORIZED
            }
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError | Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> &'static str {
        match self {
            Self::MissingCredentials => {
                r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
            }
            Self::InvalidRequest => {
                r#"{"error":"invalid_request","error_description":"malformed Authorization header"}"#
            }
            // One body for every reason: the client must not learn which check failed.
            Self::InvalidToken(_) => {
                r#"{"error":"invalid_token","error_description":"the access token is invalid"}"#
            }
            Self::ForeignToken => {
                r#"{"error":"invalid_token","error_description":"the bearer token is not one of this application's tokens (another prefix)"}"#
            }
            Self::InsufficientScope(_) => {
                r#"{"error":"insufficient_scope","error_description":"the access token lacks a required capability"}"#
            }
            Self::Unavailable => {
                r#"{"error":"temporarily_unavailable","error_description":"credentials cannot be checked right now"}"#
            }
            Self::ServerError => {
                r#"{"error":"server_error","error_description":"credentials cannot be checked"}"#
            }
            Self::MissingLayer => {
                "missing principal: is `AgentAuthLayer` installed on this route (and before this extractor or layer)?"
            }
        }
    }

    /// The response; `challenge` is `None` when no `AgentAuthLayer` ran before us, in which case
    /// the challenge carries no realm.
    pub(crate) fn response<B: From<&'static str>>(
        &self,
        challenge: Option<&Challenge>,
    ) -> Response<B> {
        let mut response = Response::new(B::from(self.body()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        let content_type = match self {
            Self::MissingLayer => "text/plain; charset=utf-8",
            _ => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let www_authenticate = match (self, challenge) {
            (Self::MissingCredentials, Some(c)) => Some(c.missing.clone()),
            (Self::MissingCredentials, None) => Some(HeaderValue::from_static("Bearer")),
            (Self::InvalidRequest, Some(c)) => Some(c.invalid_request.clone()),
            (Self::InvalidRequest, None) => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_request\""))
            }
            (Self::InvalidToken(_) | Self::ForeignToken, Some(c)) => Some(c.invalid_token.clone()),
            (Self::InvalidToken(_) | Self::ForeignToken, None) => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_token\""))
            }
            (Self::InsufficientScope(scope), Some(c)) => Some(c.insufficient_scope(scope)),
            (Self::InsufficientScope(scope), None) => HeaderValue::try_from(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            ))
            .ok(),
            (Self::Unavailable | Self::ServerError | Self::MissingLayer, _) => None,
        };
        if let Some(value) = www_authenticate {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        match self {
            Self::InvalidToken(reason) => {
                response.extensions_mut().insert(*reason);
            }
            Self::ForeignToken => {
                response
                    .extensions_mut()
                    .insert(InvalidReason::ForeignPrefix);
            }
            _ => {}
        }
        response
    }
}

/// Why a handler (or [`RequireCapabilityLayer`](crate::RequireCapabilityLayer)) could not get the
/// principal it needs. Answers with the RFC 6750 status and `WWW-Authenticate` challenge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PrincipalRejection {
    /// The request carries no principal: `401` with a `Bearer` challenge.
    Unauthenticated(MissingPrincipal),
    /// The principal's ceiling does not allow the capability: `403 insufficient_scope`.
    InsufficientScope(InsufficientScope),
    /// `AgentAuthLayer` did not run before this extractor: `500`, a server misconfiguration.
    MissingLayer(MissingLayer),
}

/// No principal on a request that went through `AgentAuthLayer`.
#[derive(Debug, Clone)]
pub struct MissingPrincipal {
    challenge: Arc<Challenge>,
    foreign_bearer: bool,
}

impl MissingPrincipal {
    /// Whether the request carried a bearer token of another prefix (answered
    /// `401 invalid_token` saying so, rather than "a bearer token is required").
    pub fn had_foreign_token(&self) -> bool {
        self.foreign_bearer
    }
}

/// The principal lacks a capability.
#[derive(Debug, Clone)]
pub struct InsufficientScope {
    capability: Box<str>,
    challenge: Option<Arc<Challenge>>,
}

impl InsufficientScope {
    /// The refusal of `capability`, with the default challenge (for checks made outside the
    /// layer's request path, such as an approval gate's).
    #[cfg(feature = "approval")]
    pub(crate) fn new(capability: &str) -> Self {
        Self {
            capability: capability.into(),
            challenge: Some(Challenge::default_shared().clone()),
        }
    }

    /// The capability that was required.
    pub fn capability(&self) -> &str {
        &self.capability
    }
}

/// The request never went through `AgentAuthLayer`.
#[derive(Debug, Clone, Copy)]
pub struct MissingLayer;

impl PrincipalRejection {
    fn parts(&self) -> (Rejection, Option<&Challenge>) {
        match self {
            Self::Unauthenticated(m) if m.foreign_bearer => {
                (Rejection::ForeignToken, Some(&m.challenge))
            }
            Self::Unauthenticated(m) => (Rejection::MissingCredentials, Some(&m.challenge)),
            Self::InsufficientScope(s) => (
                Rejection::InsufficientScope(s.capability.clone()),
                s.challenge.as_deref(),
            ),
            Self::MissingLayer(_) => (Rejection::MissingLayer, None),
        }
    }

    /// The HTTP status: 401, 403 or 500.
    pub fn status(&self) -> StatusCode {
        self.parts().0.status()
    }

    /// The response for any body type that can be built from a static string.
    pub fn to_response<B: From<&'static str>>(&self) -> Response<B> {
        let (rejection, challenge) = self.parts();
        rejection.response(challenge)
    }
}

impl std::fmt::Display for PrincipalRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthenticated(_) => f.write_str("the request is not authenticated"),
            Self::InsufficientScope(s) => write!(f, "missing capability `{}`", s.capability),
            Self::MissingLayer(_) => {
                f.write_str("missing principal: is `AgentAuthLayer` installed on this route?")
            }
        }
    }
}

impl std::error::Error for PrincipalRejection {}

fn marker(extensions: &Extensions) -> Option<&LayerMarker> {
    extensions.get::<LayerMarker>()
}

/// The request's principal, `Ok(None)` when the layer ran but found none.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn optional_principal(
    extensions: &Extensions,
) -> Result<Option<&Principal>, PrincipalRejection> {
    match (extensions.get::<Principal>(), marker(extensions)) {
        (Some(principal), _) => Ok(Some(principal)),
        (None, Some(_)) => Ok(None),
        (None, None) => Err(PrincipalRejection::MissingLayer(MissingLayer)),
    }
}

/// The request's principal, or the rejection explaining its absence.
pub(crate) fn principal(extensions: &Extensions) -> Result<&Principal, PrincipalRejection> {
    match (extensions.get::<Principal>(), marker(extensions)) {
        (Some(principal), _) => Ok(principal),
        (None, Some(marker)) => Err(PrincipalRejection::Unauthenticated(MissingPrincipal {
            challenge: marker.challenge.clone(),
            foreign_bearer: marker.foreign_bearer,
        })),
        (None, None) => Err(PrincipalRejection::MissingLayer(MissingLayer)),
    }
}

/// The request's principal if its ceiling allows `capability`.
pub(crate) fn require<'a>(
    extensions: &'a Extensions,
    capability: &str,
) -> Result<&'a Principal, PrincipalRejection> {
    let principal = principal(extensions)?;
    if principal.can(capability) {
        Ok(principal)
    } else {
        Err(PrincipalRejection::InsufficientScope(InsufficientScope {
            capability: capability.into(),
            // The layer marks an admitted request only when its challenge is not the default one.
            challenge: Some(match marker(extensions) {
                Some(marker) => marker.challenge.clone(),
                None => Challenge::default_shared().clone(),
            }),
        }))
    }
}

/// `403 insufficient_scope` naming `scope` (space-separated capabilities), with the challenge of
/// the innermost `AgentAuthLayer` the request went through: for layers inside it that need
/// more than one capability at once (the MCP layer's batches and step-up scopes).
#[cfg_attr(not(feature = "mcp"), allow(dead_code))]
pub(crate) fn insufficient_scope<B: From<&'static str>>(
    extensions: &Extensions,
    scope: &str,
) -> Response<B> {
    let challenge = match marker(extensions) {
        Some(marker) => &marker.challenge,
        None => Challenge::default_shared(),
    };
    Rejection::InsufficientScope(scope.into()).response(Some(challenge))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceiling::{CapabilityCeiling, CapabilitySet, Policy};
    use crate::principal::ExecutionPrincipal;

    /// Extensions as the layer leaves them for a session of a user allowed `posts:*`.
    fn admitted() -> Extensions {
        let role = Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap());
        let principal: Principal =
            ExecutionPrincipal::session("alice".into(), CapabilityCeiling::new(Arc::new(role)))
                .into();
        let mut extensions = Extensions::new();
        extensions.insert(principal);
        extensions
    }

    #[test]
    fn a_missing_capability_is_named_by_the_rejection() {
        let Err(rejection) = require(&admitted(), "users:delete") else {
            panic!("users:delete is outside posts:*");
        };
        let PrincipalRejection::InsufficientScope(scope) = &rejection else {
            panic!("expected insufficient scope, got {rejection:?}");
        };
        assert_eq!(scope.capability(), "users:delete");
        assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
        assert_eq!(rejection.to_string(), "missing capability `users:delete`");
    }

    #[test]
    fn each_rejection_answers_its_status() {
        let unauthenticated = principal(&{
            let mut extensions = Extensions::new();
            extensions.insert(LayerMarker::new(Challenge::default_shared().clone()));
            extensions
        })
        .unwrap_err();
        assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            unauthenticated.to_string(),
            "the request is not authenticated"
        );
        let missing_layer = principal(&Extensions::new()).unwrap_err();
        assert_eq!(missing_layer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            missing_layer.to_string(),
            "missing principal: is `AgentAuthLayer` installed on this route?"
        );
    }

    #[test]
    fn a_missing_layer_is_answered_in_plain_text() {
        let response: Response<String> = Rejection::MissingLayer.response(None);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        let response: Response<String> = Rejection::InvalidRequest.response(None);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
