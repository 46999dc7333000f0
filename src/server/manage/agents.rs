//! `/api/agents…`: agents and their tokens.

use ::axum::extract::{Path, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{get, post};
use ::axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::state::{
    ManageState, by_slug, capabilities, invalid, lifetime, managed, person, target, visible_agents,
};
use crate::ceiling::Policy;
use crate::principal::{Principal, TokenId};
use crate::server::body::Body;
use crate::server::error::ApiError;
use crate::server::views;
use crate::store::{AgentStatus, AgentType, Backend, NewAgent, NewToken, Store};

/// Its routes, under the state of [`manage_router`](super::manage_router).
pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route("/api/agents", get(list_agents::<B>).post(create_agent::<B>))
        .route(
            "/api/agents/{slug}",
            get(show_agent::<B>).delete(delete_agent::<B>),
        )
        .route("/api/agents/{slug}/disable", post(disable::<B>))
        .route("/api/agents/{slug}/enable", post(enable::<B>))
        .route(
            "/api/agents/{slug}/tokens",
            get(list_tokens::<B>).post(create_token::<B>),
        )
        .route(
            "/api/agents/{slug}/tokens/{id}",
            axum::routing::delete(revoke_token::<B>),
        )
        .route("/api/agents/{slug}/tokens/{id}/rotate", post(rotate::<B>))
}

async fn list_agents<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let visible = visible_agents(&state.store, &user).await?;
    Ok(Json(visible.iter().map(views::agent).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    slug: String,
    parent: Option<String>,
    #[serde(rename = "type")]
    agent_type: Option<String>,
    capabilities: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    modes: Option<Vec<String>>,
    expires_in_seconds: Option<i64>,
}

async fn create_agent<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Body(body): Body<CreateAgent>,
) -> Result<Response, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let mut new = match &body.parent {
        Some(parent) => {
            let parent = by_slug(&state.store, parent).await?;
            NewAgent::child(body.slug, parent.id)
        }
        None => NewAgent::new(body.slug, user.clone()),
    };
    if let Some(kind) = &body.agent_type {
        let kind = AgentType::parse(kind)
            .ok_or_else(|| invalid("type: autonomous, supervised or ephemeral"))?;
        new = new.with_type(kind);
    }
    if let Some(names) = &body.capabilities {
        new = new.with_policy(Policy::allow(capabilities(names)?));
    }
    if let Some(scopes) = body.scopes {
        new = new.with_scopes(scopes);
    }
    if let Some(modes) = body.modes {
        new = new.with_modes(modes);
    }
    if let Some(seconds) = body.expires_in_seconds {
        new = new.expires_in(lifetime(seconds)?);
    }
    let agent = managed(&state, user).create_agent(new).await?;
    Ok((StatusCode::CREATED, Json(views::agent(&agent))).into_response())
}

async fn show_agent<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let agent = managed.agent(&agent.id).await?;
    Ok(Json(views::agent(&agent)))
}

async fn set_status<B>(
    state: ManageState<Store<B>>,
    principal: Principal,
    slug: String,
    status: AgentStatus,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let agent = managed.set_agent_status(&agent.id, status).await?;
    Ok(Json(views::agent(&agent)))
}

async fn disable<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    set_status(state, principal, slug, AgentStatus::Disabled).await
}

async fn enable<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    set_status(state, principal, slug, AgentStatus::Active).await
}

async fn delete_agent<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    managed.delete_agent(&agent.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let tokens = managed.list_tokens(&agent.id).await?;
    Ok(Json(tokens.iter().map(views::token).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    label: String,
    expires_in_seconds: Option<i64>,
    capabilities: Option<Vec<String>>,
    max_operations: Option<u64>,
    #[serde(default)]
    expires_on_completion: bool,
    task_id: Option<String>,
    intent: Option<String>,
}

/// The token request as the store takes it.
fn new_token(body: CreateToken) -> Result<NewToken, ApiError> {
    let mut new = NewToken::new(body.label);
    if let Some(seconds) = body.expires_in_seconds {
        new = new.expires_in(lifetime(seconds)?);
    }
    if let Some(names) = &body.capabilities {
        new = new.with_capabilities(capabilities(names)?);
    }
    if let Some(n) = body.max_operations {
        new = new.max_operations(n);
    }
    if body.expires_on_completion {
        new = new.expires_on_completion();
    }
    if let Some(task) = body.task_id {
        new = new.task_id(task);
    }
    if let Some(intent) = body.intent {
        new = new.intent(intent);
    }
    Ok(new)
}

async fn create_token<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let issued = managed.create_token(&agent.id, new_token(body)?).await?;
    Ok((StatusCode::CREATED, Json(views::issued(&issued))).into_response())
}

async fn revoke_token<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let info = managed.revoke_token(&agent.id, &TokenId::from(id)).await?;
    Ok(Json(views::token(&info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default)]
    grace_seconds: i64,
}

async fn rotate<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    Body(body): Body<Rotate>,
) -> Result<Response, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let grace = u64::try_from(body.grace_seconds)
        .map(std::time::Duration::from_secs)
        .map_err(|_| invalid("grace_seconds: zero or a positive number of seconds"))?;
    let issued = managed
        .rotate_token(&agent.id, &TokenId::from(id), grace)
        .await?;
    Ok((StatusCode::CREATED, Json(views::issued(&issued))).into_response())
}
