//! [`PrincipalRejection`]: why a handler or route layer could not get the principal it needs.

use std::sync::Arc;

use http::{Extensions, Response, StatusCode};

use crate::layer::response::{Challenge, LayerMarker, Rejection};
use crate::principal::Principal;

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
}

/// The principal lacks a capability.
#[derive(Debug, Clone)]
pub struct InsufficientScope {
    capability: Box<str>,
    challenge: Option<Arc<Challenge>>,
}

impl InsufficientScope {
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

fn marker(extensions: &Extensions) -> Option<&Arc<Challenge>> {
    extensions.get::<LayerMarker>().map(|m| &m.0)
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
        (None, Some(challenge)) => Err(PrincipalRejection::Unauthenticated(MissingPrincipal {
            challenge: challenge.clone(),
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
            challenge: principal
                .challenge()
                .or_else(|| marker(extensions))
                .cloned(),
        }))
    }
}
