//! `GET /`: my agents, their status and last use, and how many approvals wait for me; the
//! form to create an agent (posted to `/agents`, [`new_agent`](super::new_agent)).

use ::axum::Router;
use ::axum::extract::{RawQuery, State};
use ::axum::response::Response;
use ::axum::routing::get;
use askama::Template;
use http::StatusCode;

use super::{Chrome, Viewer, message, render};
use crate::approval::{ApprovalFilter, ApprovalStatus};
use crate::server::ManageState;
use crate::server::manage::{managed, visible_agents};
use crate::store::{Agent, Backend, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/", get(home::<B>))
}

/// `templates/home.html`.
#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    chrome: Chrome,
    /// A form's outcome (`?done=`, from a fixed list).
    notice: Option<&'static str>,
    agents: Vec<AgentRow>,
    pending: usize,
}

/// One agent as the home page lists it.
struct AgentRow {
    slug: String,
    owner: String,
    kind: String,
    status: String,
    last_used: String,
}

impl AgentRow {
    fn new(agent: &Agent) -> Self {
        Self {
            slug: agent.slug.to_string(),
            owner: agent.owner.as_str().to_owned(),
            kind: agent.agent_type.as_str().to_owned(),
            status: agent.status.as_str().to_owned(),
            last_used: super::time::ago_or(agent.last_used_at, "never"),
        }
    }
}

async fn home<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = viewer.chrome("Agents", "agents");
    let agents = match visible_agents(&state.store, viewer.user()).await {
        Ok(agents) => agents,
        Err(error) => {
            tracing::warn!(%error, "home page: store unavailable");
            return message::unavailable();
        }
    };
    let pending = ApprovalFilter {
        status: Some(ApprovalStatus::Pending),
        ..ApprovalFilter::default()
    };
    // A store that keeps no approvals has none pending.
    let pending = managed(&state, viewer.user().clone())
        .approvals(&pending)
        .await
        .map_or(0, |approvals| approvals.len());
    let page = Home {
        chrome,
        notice: super::agent::notice(query.as_deref()),
        agents: agents.iter().map(AgentRow::new).collect(),
        pending,
    };
    render(StatusCode::OK, &page)
}
