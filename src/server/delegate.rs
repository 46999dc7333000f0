//! Delegation and task scope over HTTP: the management calls (revoke a subtree, complete a
//! task) and the agent-facing delegation endpoint.

use ::axum::extract::{Path, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::post;
use ::axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Body;
use super::csrf::SameOriginLayer;
use super::error::ApiError;
use super::manage::{ManageState, by_slug, capabilities, invalid, managed, person, target};
use crate::audit::AuditRecorder;
use crate::delegation::{Delegation, DelegationError, Delegator};
use crate::error::StoreError;
use crate::principal::{AuthSource, Principal, TokenId};
use crate::store::{Backend, Store};

/// The management calls of delegation and task scope, beside
/// [`manage_router`](super::manage_router) and with its conventions (a session principal,
/// same-origin state changes, JSON answers and errors, every change audited through the
/// state's writer):
///
/// | route | does |
/// |---|---|
/// | `POST /api/agents/{slug}/tokens/{id}/revoke-tree` | revoke the token and every token delegated from it; owner or admin; `{"token_id", "revoked": N}` |
/// | `POST /api/tasks/{task_id}/complete` | end every live token of the signed-in user's agents minted for the task, and those delegated from them; `{"task_id", "ended": N}` |
///
/// Completing a task is for the owner of the agents that serve it (see
/// [`Managed::complete_task`](crate::store::Managed::complete_task)).
pub fn tasks_router<B>(state: ManageState<Store<B>>) -> Router
where
    B: Backend,
{
    Router::new()
        .route(
            "/api/agents/{slug}/tokens/{id}/revoke-tree",
            post(revoke_tree::<B>),
        )
        .route("/api/tasks/{task_id}/complete", post(complete_task::<B>))
        .layer(SameOriginLayer::for_session_cookie())
        .with_state(state)
}

/// The agent-facing delegation endpoint: `POST /api/delegations`. The caller authenticates
/// with the parent token, `Authorization: Bearer …` (put an
/// [`AgentAuthLayer`](crate::AgentAuthLayer) around it: the token it admitted is the parent,
/// and the raw token is the proof of possession [`Store::delegate`](crate::store::Store::delegate) checks again);
/// a session gets 403. As a request it spends one use of a use-limited parent, like any other.
///
/// The body (unknown fields refused): `{"agent": slug, "label": "…", "capabilities": [...],
/// "expires_in": "15m" or seconds, "max_operations": N, "expires_on_completion": bool,
/// "task_id": "…", "intent": "…", "environment": "…"}`; everything but `agent` and `label`
/// optional and inherited from the parent when left out. The answer, `201` with
/// `Cache-Control: no-store`: `{"token", "id", "agent", "expires_at", "delegation_depth",
/// "task_id"}`, the token shown this once. A child wider than its parent is `403`
/// (`exceeds_parent`, the message naming what exceeds: `capabilities outside the parent
/// token's ceiling: posts:delete`); one that names another task or environment, or a target
/// that is inactive, `422`; an unknown target `404`, and a target of another owner the very
/// same `404` (no oracle of other owners' slugs). Issued and refused delegations are
/// audited ([`Delegator`]); no token is ever logged.
///
/// (The name leaves `/oauth/token` to an RFC 8693 token-exchange grant, which will issue the
/// same children through the same [`Delegator`].)
pub fn delegations_router<B>(state: ManageState<Store<B>>) -> Router
where
    B: Backend,
{
    Router::new()
        .route("/api/delegations", post(delegate::<B>))
        .with_state(state)
}

async fn revoke_tree<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let id = TokenId::from(id);
    let revoked = managed.revoke_token_tree(&agent.id, &id).await?;
    Ok(Json(json!({"token_id": id.as_str(), "revoked": revoked})))
}

async fn complete_task<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let ended = managed(&state, user).complete_task(&task_id).await?;
    Ok(Json(json!({"task_id": task_id, "ended": ended})))
}

/// A lifetime: seconds, or a duration (`15m`, `1h`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Lifetime {
    Seconds(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegateBody {
    agent: String,
    label: String,
    capabilities: Option<Vec<String>>,
    expires_in: Option<Lifetime>,
    max_operations: Option<u64>,
    #[serde(default)]
    expires_on_completion: bool,
    task_id: Option<String>,
    intent: Option<String>,
    environment: Option<String>,
}

/// A refused delegation as the agent reads it: what exceeds the parent is 403, a request of
/// the wrong shape 422.
///
/// A target of another owner answers exactly as an unknown slug does (`404`, the same body):
/// the endpoint tells no one which slugs other owners' agents have.
fn refusal(error: StoreError) -> ApiError {
    let StoreError::Delegation(refused) = &error else {
        return ApiError::from(error);
    };
    if let DelegationError::TargetOfAnotherOwner(slug) = refused {
        return unknown_agent(slug);
    }
    let (status, code) = match refused {
        DelegationError::CapabilitiesExceedParent(_)
        | DelegationError::ExpiryExceedsParent { .. }
        | DelegationError::UsesExceedParent { .. }
        | DelegationError::DepthExceeded { .. }
        | DelegationError::CapabilitiesExceedOrchestrator(_) => {
            (StatusCode::FORBIDDEN, "exceeds_parent")
        }
        DelegationError::ParentRefused(_) | DelegationError::NotOrchestrator(_) => {
            (StatusCode::FORBIDDEN, "forbidden")
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    };
    ApiError::new(status, code, refused.to_string())
}

/// The answer for a slug that names no agent of the caller's owner: the one
/// [`by_slug`] gives for a slug that names none at all.
fn unknown_agent(slug: &str) -> ApiError {
    ApiError::from(StoreError::unknown_agent(crate::store::shortened(slug)))
}

/// The raw bearer token of the request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn delegate<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    headers: HeaderMap,
    Body(body): Body<DelegateBody>,
) -> Result<Response, ApiError>
where
    B: Backend,
{
    let forbidden = |message: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
    if principal.auth_source() == AuthSource::Session || principal.token_id().is_none() {
        return Err(forbidden(
            "delegation needs the parent token as `Authorization: Bearer`, not a session",
        ));
    }
    let parent = bearer(&headers)
        .ok_or_else(|| forbidden("delegation needs the parent token as `Authorization: Bearer`"))?;
    let target = by_slug(&state.store, &body.agent).await?;
    let mut request = Delegation::to(target.id.clone(), body.label);
    if let Some(names) = &body.capabilities {
        request = request.with_capabilities(capabilities(names)?);
    }
    if let Some(lifetime) = body.expires_in {
        // Seconds or text, one rule: positive, at most a hundred years (`parse_duration`).
        let text = match lifetime {
            Lifetime::Seconds(seconds) => seconds.to_string(),
            Lifetime::Text(text) => text,
        };
        let ttl = super::parse_duration(&text)
            .ok()
            .filter(|ttl| !ttl.is_zero())
            .ok_or_else(|| {
                invalid("expires_in: a positive number of seconds or a duration (15m)")
            })?;
        request = request.expires_in(ttl);
    }
    if let Some(n) = body.max_operations {
        request = request.max_operations(n);
    }
    if body.expires_on_completion {
        request = request.expires_on_completion();
    }
    if let Some(task) = body.task_id {
        request = request.task_id(task);
    }
    if let Some(intent) = body.intent {
        request = request.intent(intent);
    }
    if let Some(environment) = body.environment {
        request = request.environment(environment);
    }
    let mut delegator = Delegator::new(&state.store).presented_by(&principal);
    if let Some(writer) = &state.audit {
        delegator = delegator.with_audit(writer as &dyn AuditRecorder);
    }
    let issued = delegator.delegate(parent, request).await.map_err(refusal)?;
    let body = json!({
        "token": issued.token.expose_secret(),
        "id": issued.info.id.as_str(),
        "agent": &*target.slug,
        "expires_at": super::views::time(issued.info.expires_at),
        "delegation_depth": issued.info.delegation_depth,
        "task_id": issued.info.task_id,
    });
    Ok((
        StatusCode::CREATED,
        [(http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
