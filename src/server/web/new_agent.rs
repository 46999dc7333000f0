//! `POST /agents`: the home page's form creates an agent owned by the person signed in (its
//! name and type; the rest has the store's defaults and is changed on the agent's page), as
//! `POST /api/agents` does without a parent.

use ::axum::Router;
use ::axum::extract::{Form, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::post;
use http::StatusCode;
use serde::Deserialize;

use super::target::refused;
use super::{Viewer, message};
use crate::principal::AgentType;
use crate::server::ManageState;
use crate::server::manage::managed;
use crate::store::{Backend, NewAgent, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/agents", post(create::<B>))
}

/// The form.
#[derive(Deserialize)]
struct NewAgentForm {
    #[serde(default)]
    slug: String,
    #[serde(default, rename = "type")]
    agent_type: String,
}

async fn create<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Form(form): Form<NewAgentForm>,
) -> Response {
    let chrome = viewer.chrome("New agent", "agents");
    let Some(kind) = AgentType::parse(&form.agent_type) else {
        return message::for_viewer(
            chrome,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Type: autonomous, supervised or ephemeral.",
        );
    };
    let new = NewAgent::new(form.slug.trim(), viewer.user().clone()).with_type(kind);
    match managed(&state, viewer.user().clone())
        .create_agent(new)
        .await
    {
        Ok(agent) => Redirect::to(&format!("/agents/{}?done=created", agent.slug)).into_response(),
        Err(error) => refused(chrome, &error.into()),
    }
}
