//! [`Authority`]: what every endpoint and grant shares — the store, the issuer, the resources
//! tokens are issued for, the lifetimes, the audit trail, the clock.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::client::{Client, ClientKind};
use super::issuer::Issuer;
use crate::audit::{AuditEvent, AuditWriter};
use crate::store::{Backend, Store};

/// The longest an authorization code lives (RFC 6749 §4.1.2 recommends at most 10 minutes;
/// this server keeps 60 s).
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(60);

/// The state every endpoint and [`Grant`](super::Grant) works with, configured through
/// [`AuthorizationServer`](super::AuthorizationServer). Cheap to clone.
pub struct Authority<B> {
    shared: Arc<Shared<B>>,
}

pub(crate) struct Shared<B> {
    pub(crate) store: Store<B>,
    pub(crate) issuer: Issuer,
    pub(crate) resources: Vec<String>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) access_lifetime: Duration,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) code_lifetime: Duration,
    /// How long an unused registration lives: a use pushes its end back by as much.
    pub(crate) unused_for: Duration,
    pub(crate) audit: Option<AuditWriter>,
    /// Introspection answers reused for a while, when configured.
    pub(crate) recent: Option<Arc<super::recent::Recent>>,
    /// The layer's verdict cache, which introspection reads and feeds, when given.
    pub(crate) verdicts: Option<crate::cache::VerdictCache>,
    /// The type of the agent a person's first consent to a registered client makes.
    pub(crate) connection_agent_type: crate::principal::AgentType,
    /// Client ID Metadata Documents, when accepted.
    #[cfg(feature = "client-id-metadata-documents")]
    pub(crate) documents: Option<Arc<super::document::Documents>>,
}

impl<B> Clone for Shared<B> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            issuer: self.issuer.clone(),
            resources: self.resources.clone(),
            scopes_supported: self.scopes_supported.clone(),
            access_lifetime: self.access_lifetime,
            refresh_lifetime: self.refresh_lifetime,
            code_lifetime: self.code_lifetime,
            unused_for: self.unused_for,
            audit: self.audit.clone(),
            recent: self.recent.clone(),
            verdicts: self.verdicts.clone(),
            connection_agent_type: self.connection_agent_type,
            #[cfg(feature = "client-id-metadata-documents")]
            documents: self.documents.clone(),
        }
    }
}

impl<B> Clone for Authority<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<B> std::fmt::Debug for Authority<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shared;
        f.debug_struct("Authority")
            .field("issuer", &s.issuer)
            .field("resources", &s.resources)
            .field("scopes_supported", &s.scopes_supported)
            .field("access_lifetime", &s.access_lifetime)
            .field("refresh_lifetime", &s.refresh_lifetime)
            .field("code_lifetime", &s.code_lifetime)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Authority<B> {
    /// Access tokens of 1 h, refresh tokens of 30 days, codes of 60 s, registrations that
    /// lapse after 30 days unused, no resource, no audit trail.
    pub(crate) fn new(store: Store<B>, issuer: Issuer) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                issuer,
                resources: Vec::new(),
                scopes_supported: Vec::new(),
                access_lifetime: Duration::from_secs(3600),
                refresh_lifetime: Duration::from_secs(30 * 86_400),
                code_lifetime: MAX_CODE_LIFETIME,
                unused_for: Duration::from_secs(30 * 86_400),
                audit: None,
                recent: None,
                verdicts: None,
                connection_agent_type: crate::principal::AgentType::default(),
                #[cfg(feature = "client-id-metadata-documents")]
                documents: None,
            }),
        }
    }

    /// The type of the agent a person's first consent to a registered client makes.
    pub(crate) fn connection_agent_type(&self) -> crate::principal::AgentType {
        self.shared.connection_agent_type
    }

    /// Client ID Metadata Documents, when accepted.
    #[cfg(feature = "client-id-metadata-documents")]
    pub(crate) fn documents(&self) -> Option<&super::document::Documents> {
        self.shared.documents.as_deref()
    }

    /// The introspection answers reused, when configured.
    pub(crate) fn recent(&self) -> Option<&super::recent::Recent> {
        self.shared.recent.as_deref()
    }

    /// The layer's verdict cache, when given.
    pub(crate) fn verdicts(&self) -> Option<&crate::cache::VerdictCache> {
        self.shared.verdicts.as_ref()
    }

    /// A copy with `change` made (the builder's step).
    pub(crate) fn edit(self, change: impl FnOnce(&mut Shared<B>)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store<B> {
        &self.shared.store
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.shared.issuer
    }

    /// The resources tokens may be issued for, the default first.
    pub fn resources(&self) -> &[String] {
        &self.shared.resources
    }

    /// The scopes advertised, and granted to a request that names none.
    pub fn scopes_supported(&self) -> &[String] {
        &self.shared.scopes_supported
    }

    /// How long access tokens live.
    pub fn access_lifetime(&self) -> Duration {
        self.shared.access_lifetime
    }

    /// How long refresh tokens live.
    pub fn refresh_lifetime(&self) -> Duration {
        self.shared.refresh_lifetime
    }

    /// How long authorization codes live.
    pub fn code_lifetime(&self) -> Duration {
        self.shared.code_lifetime
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.store.now()
    }

    /// The resource a request is for: the one it names, if this server issues for it; the
    /// default when it names none. `Err` with the reason otherwise.
    pub fn target(&self, asked: Option<&str>) -> Result<Option<String>, &'static str> {
        let resources = &self.shared.resources;
        match (asked, resources.first()) {
            (None, default) => Ok(default.cloned()),
            (Some(asked), _) if resources.iter().any(|r| r == asked) => Ok(Some(asked.to_owned())),
            (Some(_), None) => Err("this server issues tokens for no resource"),
            (Some(_), Some(_)) => Err("the resource is not one this server issues tokens for"),
        }
    }

    /// The audit trail's writer, if there is one (for what records through it, such as a
    /// [`Delegator`](crate::delegation::Delegator)).
    pub(crate) fn audit_writer(&self) -> Option<&AuditWriter> {
        self.shared.audit.as_ref()
    }

    /// Records `event` in the audit trail, if there is one.
    pub async fn record(&self, event: AuditEvent) {
        if let Some(writer) = &self.shared.audit {
            writer.record(event).await;
        }
    }

    /// The end of a registration used now (`None` for a client that does not lapse).
    pub(crate) fn unused_until(&self, kind: &ClientKind) -> Option<OffsetDateTime> {
        if *kind != ClientKind::Registered {
            return None;
        }
        let unused_for =
            time::Duration::try_from(self.shared.unused_for).unwrap_or(time::Duration::MAX);
        self.now().checked_add(unused_for)
    }

    /// Marks `client` used now: its last use, and for a registered client an end pushed back.
    /// At most once a minute per client, and best effort: a failure is logged, not answered.
    ///
    /// The backend replaces a client's record whole, so the record is read again just before:
    /// a revocation made meanwhile is kept, not overwritten (a revocation landing between that
    /// read and the write would still be lost; the backend has no narrower update).
    pub async fn touch_client(&self, client: &Client) {
        let now = self.now();
        if client
            .last_used_at
            .is_some_and(|at| now - at < time::Duration::minutes(1))
        {
            return;
        }
        let backend = self.store().backend();
        let result = match backend.client(&client.id).await {
            Ok(Some(mut fresh)) if fresh.revoked_at.is_none() => {
                fresh.last_used_at = Some(now);
                fresh.expires_at = self.unused_until(&fresh.kind).or(fresh.expires_at);
                backend.update_client(&fresh).await.map(drop)
            }
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::warn!(%error, client = %client.id, "oauth: could not record a client's use");
        }
    }
}
