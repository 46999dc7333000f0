//! Extractors for axum 0.8 (feature `axum`): [`Principal`], `Option<Principal>` and
//! [`Require<C>`].
//!
//! * `Principal` — the request's principal; `401` with a `Bearer` challenge when there is none,
//!   `500` with a hint when `AgentAuthLayer` is not installed.
//! * `Option<Principal>` — `None` instead of the `401` (still `500` without the layer).
//! * `Require<C>` — the principal, if its ceiling allows the capability named by `C`; `403
//!   insufficient_scope` with `scope="…"` otherwise. Declare `C` with [`capability!`](crate::capability).
//!
//! ```
//! use axum::{Router, routing::post};
//! use tower_agent_auth::axum::Require;
//! use tower_agent_auth::{Principal, capability};
//!
//! capability!(
//!     /// May publish posts.
//!     pub PublishPosts = "posts:publish"
//! );
//!
//! async fn publish(Require(principal, ..): Require<PublishPosts>) -> String {
//!     format!("published for {}", principal.user_id())
//! }
//!
//! async fn whoami(principal: Option<Principal>) -> String {
//!     principal.map_or("anonymous".into(), |p| p.user_id().to_string())
//! }
//!
//! let app: Router = Router::new().route("/publish", post(publish)).route("/me", axum::routing::get(whoami));
//! ```

use std::marker::PhantomData;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::layer::rejection::{self, PrincipalRejection};
use crate::principal::Principal;

impl IntoResponse for PrincipalRejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        rejection::principal(&parts.extensions).cloned()
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(rejection::optional_principal(&parts.extensions)?.cloned())
    }
}

/// Names a capability at the type level, for [`Require<C>`]. Declare one with
/// [`capability!`](crate::capability).
pub trait CapabilityName: Send + Sync + 'static {
    /// The capability, e.g. `posts:publish`.
    const NAME: &'static str;
}

/// Declares a unit type naming a capability, for [`Require<C>`].
///
/// ```
/// tower_agent_auth::capability!(
///     /// May read the audit log.
///     pub ReadAudit = "audit:read"
/// );
/// use tower_agent_auth::axum::CapabilityName;
/// assert_eq!(ReadAudit::NAME, "audit:read");
/// ```
///
/// The name is checked at compile time with
/// [`is_capability_name`](crate::ceiling::is_capability_name), the rule
/// [`RequireCapabilityLayer::try_new`](crate::RequireCapabilityLayer::try_new) applies at run
/// time. A pattern or an invalid name would make the route answer `403` to every token (no
/// ceiling ever allows a pattern), so it does not compile:
///
/// ```compile_fail
/// tower_agent_auth::capability!(pub EveryPost = "posts:*");
/// ```
///
/// ```compile_fail
/// tower_agent_auth::capability!(pub ReadPosts = "Posts:Read");
/// ```
#[macro_export]
macro_rules! capability {
    ($(#[$meta:meta])* $vis:vis $name:ident = $capability:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;

        impl $crate::axum::CapabilityName for $name {
            const NAME: &'static str = $capability;
        }

        const _: () = ::core::assert!(
            $crate::ceiling::is_capability_name($capability),
            "capability!: not a capability name: expected 1-128 bytes of segments of [a-z0-9_.-] \
             joined by ':', and no pattern (`*` or `name:*`)"
        );
    };
}

/// Extracts the principal if its ceiling allows the capability `C::NAME`.
#[derive(Debug, Clone)]
pub struct Require<C>(pub Principal, pub PhantomData<C>);

impl<C> std::ops::Deref for Require<C> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync, C: CapabilityName> FromRequestParts<S> for Require<C> {
    type Rejection = PrincipalRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = rejection::require(&parts.extensions, C::NAME)?;
        Ok(Self(principal.clone(), PhantomData))
    }
}
