#![doc = include_str!("../../docs/layer.md")]

mod bearer;
mod challenge;
mod decide;
mod future;
#[allow(clippy::module_inception)]
mod layer;
pub(crate) mod rejection;
mod require;
mod service;

pub use challenge::ChallengeError;
pub use future::ResponseFuture;
pub use layer::AgentAuthLayer;
pub use rejection::{InsufficientScope, MissingLayer, MissingPrincipal, PrincipalRejection};
pub use require::{RequireCapability, RequireCapabilityFuture, RequireCapabilityLayer};
pub use service::AgentAuth;

/// A response extension by which the application says it refused the request before acting
/// on it: the layer then releases the use a use-limited token reserved (and, with uses shared
/// down a delegation chain, every ancestor's), whatever the status. Insert it with
/// `response.extensions_mut().insert(NotActed)`; every
/// [`ApprovalRejection`](crate::approval::ApprovalRejection) answer carries it. Set it only
/// when nothing was done: a use released is an operation not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NotActed;
