//! `/api/agents/{slug}/policy` and `…/grants`: who may do what with an agent.

use ::axum::extract::{Path, State};
use ::axum::routing::{get, put};
use ::axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::state::{ManageState, capabilities, invalid, target};
use crate::ceiling::Policy;
use crate::principal::{Principal, UserId};
use crate::server::body::Body;
use crate::server::error::ApiError;
use crate::server::views;
use crate::store::{AccessRole, Backend, Store};

/// Its routes, under the state of [`manage_router`](super::manage_router).
pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route("/api/agents/{slug}/policy", put(set_policy::<B>))
        .route("/api/agents/{slug}/grants", get(list_grants::<B>))
        .route(
            "/api/agents/{slug}/grants/{user}",
            put(grant::<B>).delete(withdraw::<B>),
        )
}

async fn list_grants<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let grants = managed.grants(&agent.id).await?;
    Ok(Json(grants.iter().map(views::grant).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    /// Required, so that a forgotten field never widens an agent: `null` for every capability
    /// the owner has.
    #[serde(deserialize_with = "present")]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
}

/// A field that must be present, `null` allowed (serde takes a missing `Option` for `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

async fn set_policy<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
    Body(body): Body<NewPolicy>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let mut policy = match &body.allow {
        Some(names) => Policy::allow(capabilities(names)?),
        None => Policy::unrestricted(),
    };
    if !body.deny.is_empty() {
        policy = policy.with_deny(capabilities(&body.deny)?);
    }
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let agent = managed.set_agent_policy(&agent.id, policy).await?;
    Ok(Json(views::agent(&agent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    role: String,
}

async fn grant<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path((slug, grantee)): Path<(String, String)>,
    Body(body): Body<Grant>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let role =
        AccessRole::parse(&body.role).ok_or_else(|| invalid("role: admin, operator or viewer"))?;
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let grant = managed
        .grant(&agent.id, &UserId::from(grantee), role)
        .await?;
    Ok(Json(views::grant(&grant)))
}

async fn withdraw<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path((slug, grantee)): Path<(String, String)>,
) -> Result<StatusCode, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    managed
        .revoke_grant(&agent.id, &UserId::from(grantee))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
