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
// Defined in a leaf module that the layers inside this one (rate limits, approvals) name
// without importing the layer.
pub use crate::outcome::NotActed;
