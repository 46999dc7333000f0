//! The management API's routers: the REST API by area, the approvals.

use ::axum::routing::get;
use ::axum::{Json, Router};
use serde_json::{Value, json};

use crate::principal::Principal;
use crate::server::csrf::SameOriginLayer;
use crate::store::{Backend, Store};

mod agents;
mod approvals;
mod audit;
mod grants;
mod state;

pub use approvals::approvals_router;
pub use state::ManageState;
pub(super) use state::{by_slug, capabilities, invalid, managed, person, target, visible_agents};

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

async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "user": principal.user_id().as_str(),
        "auth_source": principal.auth_source().as_str(),
        "agent": principal.agent_ref().map(|a| a.slug()),
    }))
}
