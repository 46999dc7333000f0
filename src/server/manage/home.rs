//! `GET /`: the landing page.

use ::axum::Router;
use ::axum::extract::State;
use ::axum::response::{Html, IntoResponse, Response};
use ::axum::routing::get;
use http::StatusCode;

use super::state::{ManageState, visible_agents};
use crate::principal::{AuthSource, Principal};
use crate::server::{pages, views};
use crate::store::{Backend, Store};

/// The landing page, `GET /`: for a signed-in user, who they are, the agents they may see
/// (as `GET /api/agents` lists them) and a sign-out button; anyone else is redirected (`303`)
/// to `/login`. Everything shown is HTML-escaped. Needs the same
/// [`AgentAuthLayer`](crate::AgentAuthLayer) around it as [`manage_router`](super::manage_router) (optional, with
/// a session resolver).
pub fn home_router<B>(state: ManageState<Store<B>>) -> Router
where
    B: Backend,
{
    pages::not_framed(Router::new().route("/", get(home::<B>)).with_state(state))
}

async fn home<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Option<Principal>,
) -> Response
where
    B: Backend,
{
    let Some(user) = principal
        .filter(|p| p.auth_source() == AuthSource::Session)
        .map(|p| p.user_id().clone())
    else {
        return (StatusCode::SEE_OTHER, [(http::header::LOCATION, "/login")]).into_response();
    };
    let agents = match visible_agents(&state.store, &user).await {
        Ok(agents) => agents,
        Err(error) => {
            tracing::warn!(%error, "landing page: store unavailable");
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The store is unavailable. Try again in a moment.",
            );
        }
    };
    let mut body = format!(
        "<h1>Agents</h1>\n<p>Signed in as <strong>{}</strong>.</p>\n{}\n",
        pages::escape(user.as_str()),
        pages::LOGOUT_BUTTON
    );
    if agents.is_empty() {
        body.push_str("<p>No agents you may see.</p>");
    } else {
        body.push_str(
            "<table>\n<tr><th>Agent</th><th>Owner</th><th>Type</th><th>Status</th><th>Expires</th></tr>\n",
        );
        for agent in &agents {
            let expires = views::time(agent.expires_at);
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                pages::escape(&agent.slug),
                pages::escape(agent.owner.as_str()),
                pages::escape(agent.agent_type.as_str()),
                pages::escape(agent.status.as_str()),
                pages::escape(expires.as_str().unwrap_or("never")),
            ));
        }
        body.push_str("</table>");
    }
    (
        [(http::header::CACHE_CONTROL, "no-store")],
        Html(pages::page("Agents", &body)),
    )
        .into_response()
}
