//! The errors of a resolution, under their old path: they live in [`crate::error`] now.

#![allow(deprecated)]

/// Moved to [`crate::error::BoxError`].
#[deprecated(since = "0.2.0", note = "moved to `tower_agent_auth::error::BoxError`")]
pub type BoxError = crate::error::BoxError;

/// Moved to [`crate::error::InvalidReason`].
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::InvalidReason`"
)]
pub type InvalidReason = crate::error::InvalidReason;

/// Moved to [`crate::error::RefusedCredential`].
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::RefusedCredential`"
)]
pub type RefusedCredential = crate::error::RefusedCredential;

/// Moved to [`crate::error::ResolveError`].
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::ResolveError`"
)]
pub type ResolveError = crate::error::ResolveError;

/// Moved to [`crate::error::DelegationError`].
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::DelegationError`"
)]
pub type DelegationError = crate::error::DelegationError;
