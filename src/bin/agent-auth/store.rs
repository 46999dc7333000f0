//! What the commands and the server need of a store: every store trait of the library.

use tower_agent_auth::TokenResolver;
use tower_agent_auth::approval::ApprovalGate;
use tower_agent_auth::audit::{AuditQuery, AuditSink};
use tower_agent_auth::delegation::DelegationStore;
use tower_agent_auth::store::{Agent, AgentStore, GrantStore, StoreError, TokenStore};

/// What the commands need of a store.
pub trait Store:
    AgentStore
    + TokenStore
    + GrantStore
    + TokenResolver
    + AuditSink
    + AuditQuery
    + ApprovalGate
    + DelegationStore
    + Clone
    + 'static
{
}
impl<T> Store for T where
    T: AgentStore
        + TokenStore
        + GrantStore
        + TokenResolver
        + AuditSink
        + AuditQuery
        + ApprovalGate
        + DelegationStore
        + Clone
        + 'static
{
}

/// The agent with this slug, or an error naming the slug.
pub async fn agent<S: Store>(store: &S, slug: &str) -> Result<Agent, StoreError> {
    store
        .agent_by_slug(slug)
        .await?
        .ok_or_else(|| StoreError::UnknownAgent(slug.to_owned()))
}
