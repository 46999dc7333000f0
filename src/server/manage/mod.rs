//! The management API's routers and what their handlers share: the state, the signed-in
//! person, the agent a path names.

use ::axum::routing::get;
use ::axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};

use crate::audit::AuditWriter;
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::principal::{AgentId, AuthSource, Principal, UserId};
use crate::server::csrf::SameOriginLayer;
use crate::server::error::ApiError;
use crate::store::{Agent, Backend, Managed, Store};

mod agents;
mod approvals;
mod audit;
mod grants;
mod home;

pub use approvals::approvals_router;
pub use home::home_router;

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

/// The management REST API, under `/api`. Every route needs a session principal (put an
/// [`AgentAuthLayer`](crate::AgentAuthLayer) with a session resolver around it); agent tokens
/// get 403. A state-changing request with the session cookie from another site is refused
/// with 403 ([`SameOriginLayer::for_session_cookie`]). Bodies are JSON, and so are answers and
/// errors (`{"error", "message"}`, also for a body that is not JSON, is malformed or names an
/// unknown field: 400, 415 or 422 with the field named). Every list a client sets is bounded
/// ([`MAX_NAMES`](crate::store::MAX_NAMES) scopes or modes,
/// [`MAX_CAPABILITIES`](crate::store::MAX_CAPABILITIES) capability patterns). Listing
/// agents shows those the user may see; a denied attempt on one agent is audited.
///
/// | route | does |
/// |---|---|
/// | `GET /api/me` | who is signed in |
/// | `GET /api/agents`, `POST /api/agents` | agents the user may see; create one (`parent` for a thread-scoped child) |
/// | `GET`, `DELETE /api/agents/{slug}`; `POST /api/agents/{slug}/disable`, `/enable` | one agent |
/// | `PUT /api/agents/{slug}/policy` | replace its policy: `{"allow": [...] or null (required), "deny": [...]}` |
/// | `GET`, `POST /api/agents/{slug}/tokens` | list; issue (the token is in the answer, once) |
/// | `DELETE /api/agents/{slug}/tokens/{id}`; `POST …/{id}/rotate` | revoke; rotate with `grace_seconds` |
/// | `GET /api/agents/{slug}/grants`; `PUT`, `DELETE …/grants/{user}` | access grants |
/// | `GET /api/agents/{slug}/audit?since=…&until=…&last=…` | the audit trail, newest last (RFC 3339 instants or durations ago: `since=1h`); the newest `last` events (default 1,000, at most 10,000) |
///
/// The approvals of supervised agents are answered by [`approvals_router`], beside it.
pub fn manage_router<B>(state: ManageState<Store<B>>) -> Router
where
    B: Backend,
{
    Router::new()
        .route("/api/me", get(me))
        .merge(agents::routes())
        .merge(grants::routes())
        .merge(audit::routes())
        .layer(SameOriginLayer::for_session_cookie())
        .with_state(state)
}

/// The agents `user` may see: every one [`Managed::agent`] lets them read.
async fn visible_agents<B>(store: &Store<B>, user: &UserId) -> Result<Vec<Agent>, StoreError>
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
pub(super) fn person(principal: &Principal) -> Result<UserId, ApiError> {
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

pub(super) fn managed<'a, B>(
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
pub(super) async fn target<'a, B>(
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

pub(super) async fn by_slug<B: Backend>(store: &Store<B>, slug: &str) -> Result<Agent, ApiError> {
    let unknown = || ApiError::from(StoreError::unknown_agent(crate::store::shortened(slug)));
    // No agent has a slug of another shape: no need to ask the store.
    if !crate::token::valid_slug(slug) {
        return Err(unknown());
    }
    store.agent_by_slug(slug).await?.ok_or_else(unknown)
}

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// `expires_in_seconds` from a client: a positive number of seconds. How far in the future is
/// too far is the store's to say (a typed `InvalidLifetime`, never an overflow).
fn lifetime(seconds: i64) -> Result<std::time::Duration, ApiError> {
    u64::try_from(seconds)
        .ok()
        .filter(|&seconds| seconds > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| invalid("expires_in_seconds: a positive number of seconds"))
}

pub(super) fn capabilities(names: &[String]) -> Result<CapabilitySet, ApiError> {
    CapabilitySet::parse(names).map_err(|e| invalid(e.to_string()))
}

async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "user": principal.user_id().as_str(),
        "auth_source": principal.auth_source().as_str(),
        "agent": principal.agent_ref().map(|a| a.slug()),
    }))
}
