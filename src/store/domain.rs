//! [`Store`]: every rule of the crate over one [`Backend`].

use std::sync::Arc;

use time::OffsetDateTime;

use super::backend::Backend;
use super::config::StoreConfig;
use super::validate::truncate;
use crate::audit::{AuditEvent, AuditFilter, AuditQuery, AuditSink};
use crate::clock::Clock;
use crate::error::AuditError;

/// Agents, tokens, grants, approvals and the audit trail, kept by a [`Backend`]: the one type
/// an application manages them through, and the [`TokenResolver`](crate::TokenResolver) its
/// [`AgentAuthLayer`](crate::AgentAuthLayer) resolves with.
///
/// Every check lives here, written once — slugs, labels, lifetimes per agent type, children
/// within their parent, capabilities within the agent's policy and the owner's role, the
/// access rule, delegation's attenuation, approval standing, the order of the resolution
/// pipeline — so every backend refuses the same input with the same error and admits the same
/// requests. The backend only keeps records.
///
/// [`MemoryStore`](super::MemoryStore), `SqliteStore` (feature `sqlite`) and `PgStore`
/// (feature `postgres`) are this type over the crate's backends; a store of your own is
/// `Store::from_backend(YourBackend, config)`. Cheap to clone: clones share the backend.
pub struct Store<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    backend: B,
    config: StoreConfig,
}

impl<B> Clone for Store<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B> std::fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &std::any::type_name::<B>())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Store<B> {
    /// A store keeping its records in `backend`, configured by `config` (token format, user
    /// directory, clock, lifetimes).
    pub fn from_backend(backend: B, config: StoreConfig) -> Self {
        Self {
            inner: Arc::new(Inner { backend, config }),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The clock the store reads (its configuration's), so that what is built around it — the
    /// times of [`Managed`](super::Managed)'s audit events — agrees with its records.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.config.clock
    }

    /// Now, to the microsecond every backend keeps.
    pub(crate) fn now(&self) -> OffsetDateTime {
        truncate(self.inner.config.clock.now())
    }

    /// The parts of a store no one else holds yet, to rebuild it with another configuration.
    pub(crate) fn into_parts(self) -> Option<(B, StoreConfig)> {
        Arc::try_unwrap(self.inner)
            .ok()
            .map(|inner| (inner.backend, inner.config))
    }
}

/// Audit events go to the backend's trail ([`Backend::append_audit`]).
#[async_trait::async_trait]
impl<B: Backend> AuditSink for Store<B> {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.inner.backend.append_audit(events).await
    }
}

#[async_trait::async_trait]
impl<B: Backend> AuditQuery for Store<B> {
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        self.inner.backend.audit_events(filter).await
    }
}
