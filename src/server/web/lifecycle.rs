//! Disabling, enabling and deleting an agent: `GET /agents/{slug}/disable` and
//! `/agents/{slug}/delete` ask for confirmation on a page of their own
//! (`templates/confirm.html`, no script needed), whose form posts to the same address;
//! `POST /agents/{slug}/enable` needs none (it takes nothing away).

use ::axum::Router;
use ::axum::extract::{Path, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::{get, post};
use askama::Template;
use http::StatusCode;

use super::target::{Target, not_allowed, refused};
use super::{Chrome, Viewer, render};
use crate::server::ManageState;
use crate::store::{AgentStatus, Backend, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route(
            "/agents/{slug}/disable",
            get(confirm_disable::<B>).post(disable::<B>),
        )
        .route("/agents/{slug}/enable", post(enable::<B>))
        .route(
            "/agents/{slug}/delete",
            get(confirm_delete::<B>).post(delete::<B>),
        )
}

/// `templates/confirm.html`: a destructive action, explained, with its button and a way back.
#[derive(Template)]
#[template(path = "confirm.html")]
pub(super) struct Confirm {
    pub chrome: Chrome,
    pub heading: String,
    /// What will happen, a sentence or two each.
    pub consequences: Vec<String>,
    /// Where the form posts.
    pub action: String,
    pub button: &'static str,
    /// Where "Cancel" leads.
    pub back: String,
}

async fn confirm_disable<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let slug = target.agent.slug.to_string();
    let chrome = viewer.chrome(format!("Disable {slug}"), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    let page = Confirm {
        chrome,
        heading: format!("Disable {slug}?"),
        consequences: vec![
            "Every request with one of its tokens is refused while it is disabled, and so are \
             its children's."
                .to_owned(),
            "Its tokens are kept: enabling it again makes them work again.".to_owned(),
        ],
        action: format!("/agents/{slug}/disable"),
        button: "Disable the agent",
        back: format!("/agents/{slug}"),
    };
    render(StatusCode::OK, &page)
}

async fn confirm_delete<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let slug = target.agent.slug.to_string();
    let chrome = viewer.chrome(format!("Delete {slug}"), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    let page = Confirm {
        chrome,
        heading: format!("Delete {slug}?"),
        consequences: vec![
            "The agent is deleted with all its tokens and its thread-scoped children; every \
             one of those tokens stops working at once."
                .to_owned(),
            "This cannot be undone. Its audit trail is kept.".to_owned(),
        ],
        action: format!("/agents/{slug}/delete"),
        button: "Delete the agent",
        back: format!("/agents/{slug}"),
    };
    render(StatusCode::OK, &page)
}

async fn set_status<B: Backend>(
    state: ManageState<Store<B>>,
    viewer: Viewer,
    slug: String,
    status: AgentStatus,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome(target.agent.slug.to_string(), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    match target
        .managed
        .set_agent_status(&target.agent.id, status)
        .await
    {
        Ok(agent) => {
            let done = match status {
                AgentStatus::Active => "enabled",
                AgentStatus::Disabled => "disabled",
            };
            Redirect::to(&format!("/agents/{}?done={done}", agent.slug)).into_response()
        }
        Err(error) => refused(chrome, &error.into()),
    }
}

async fn disable<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    set_status(state, viewer, slug, AgentStatus::Disabled).await
}

async fn enable<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    set_status(state, viewer, slug, AgentStatus::Active).await
}

async fn delete<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome(target.agent.slug.to_string(), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    match target.managed.delete_agent(&target.agent.id).await {
        Ok(()) => Redirect::to("/?done=deleted").into_response(),
        Err(error) => refused(chrome, &error.into()),
    }
}
