//! What a response tells the layers outside it.
//!
//! Layers and handlers inside [`AgentAuthLayer`](crate::AgentAuthLayer) — rate limits, the
//! approval gate, the application — mark their answers here; the authentication layer reads
//! the marks when it settles a request. A leaf: it imports nothing of the crate, so every
//! module can mark a response without importing the layer.

/// A response extension by which the application says it refused the request before acting
/// on it: the layer then releases the use a use-limited token reserved (and, with uses shared
/// down a delegation chain, every ancestor's), whatever the status. Insert it with
/// `response.extensions_mut().insert(NotActed)`; every
/// `approval::ApprovalRejection` answer (feature `approval`) carries it. Set it only
/// when nothing was done: a use released is an operation not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NotActed;
