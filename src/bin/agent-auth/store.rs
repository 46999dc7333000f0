//! What the commands and the server need of a store: every store trait of the library.

use tower_agent_auth::TokenResolver;
use tower_agent_auth::approval::ApprovalGate;
use tower_agent_auth::audit::{AuditQuery, AuditSink};
use tower_agent_auth::delegation::DelegationStore;
use tower_agent_auth::store::{AgentStore, GrantStore, TokenStore};

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
