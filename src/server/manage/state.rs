//! What the management handlers share: the state, the signed-in person, the agent a path
//! names, and the answers to bad input.

use http::StatusCode;

use crate::audit::AuditWriter;
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::principal::{AgentId, AuthSource, Principal, UserId};
use crate::server::error::ApiError;
use crate::store::{Agent, Backend, Managed, Store};

/// What the management routes need: the store and, optionally, the audit writer every change
/// is recorded through.
pub struct ManageState<S> {
    /// The store.
    pub store: S,
    /// Where changes and denied attempts are recorded.
    pub audit: Option<AuditWriter>,
}

impl<S: Clone> Clone for ManageState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            audit: self.audit.clone(),
        }
    }
}

/// The agents `user` may see: every one [`Managed::agent`] lets them read.
pub(in crate::server) async fn visible_agents<B>(
    store: &Store<B>,
    user: &UserId,
) -> Result<Vec<Agent>, StoreError>
where
    B: Backend,
{
    let ids: std::collections::HashSet<AgentId> =
        store.agents_visible_to(user).await?.into_iter().collect();
    let mut visible = store.list_agents().await?;
    visible.retain(|agent| ids.contains(&agent.id));
    Ok(visible)
}

/// The signed-in user; agents cannot manage agents.
pub(in crate::server) fn person(principal: &Principal) -> Result<UserId, ApiError> {
    if principal.auth_source() == AuthSource::Session {
        Ok(principal.user_id().clone())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "management needs a signed-in user, not an agent token",
        ))
    }
}

pub(in crate::server) fn managed<'a, B>(
    state: &'a ManageState<Store<B>>,
    user: UserId,
) -> Managed<'a, Store<B>>
where
    B: Backend,
{
    let managed = Managed::new(&state.store, user);
    match &state.audit {
        Some(writer) => managed.with_audit(writer),
        None => managed,
    }
}

/// The signed-in user's view of the store, and the agent `slug` names.
pub(in crate::server) async fn target<'a, B>(
    state: &'a ManageState<Store<B>>,
    principal: &Principal,
    slug: &str,
) -> Result<(Managed<'a, Store<B>>, Agent), ApiError>
where
    B: Backend,
{
    let user = person(principal)?;
    let agent = by_slug(&state.store, slug).await?;
    Ok((managed(state, user), agent))
}

pub(in crate::server) async fn by_slug<B: Backend>(
    store: &Store<B>,
    slug: &str,
) -> Result<Agent, ApiError> {
    let unknown = || ApiError::from(StoreError::unknown_agent(crate::store::shortened(slug)));
    // No agent has a slug of another shape: no need to ask the store.
    if !crate::token::valid_slug(slug) {
        return Err(unknown());
    }
    store.agent_by_slug(slug).await?.ok_or_else(unknown)
}

pub(in crate::server) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// `expires_in_seconds` from a client: a positive number of seconds. How far in the future is
/// too far is the store's to say (a typed `InvalidLifetime`, never an overflow).
pub(super) fn lifetime(seconds: i64) -> Result<std::time::Duration, ApiError> {
    u64::try_from(seconds)
        .ok()
        .filter(|&seconds| seconds > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| invalid("expires_in_seconds: a positive number of seconds"))
}

pub(in crate::server) fn capabilities(names: &[String]) -> Result<CapabilitySet, ApiError> {
    CapabilitySet::parse(names).map_err(|e| invalid(e.to_string()))
}
