//! `/api/approvals…`: what supervised agents asked a person's approval for.

use ::axum::extract::{Path, State};
use ::axum::routing::{get, post};
use ::axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{ManageState, by_slug, invalid, managed, person};
use crate::approval::{Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus};
use crate::error::{NotFound, StoreError};
use crate::principal::Principal;
use crate::server::body::{OptionalBody, Params};
use crate::server::csrf::SameOriginLayer;
use crate::server::error::ApiError;
use crate::server::views;
use crate::store::{Backend, Store};

/// The management API of [approvals](crate::approval): what supervised agents asked a
/// person's approval for, and the person's answer. The conventions of [`manage_router`](super::manage_router) hold
/// (a session principal, same-origin state changes, JSON answers and errors); a decision is
/// audited through the state's writer.
///
/// | route | does |
/// |---|---|
/// | `GET /api/approvals?agent=…&status=…&last=…` | approvals of the agents the user may see (any role), newest first (`agent`: a slug; `status`: pending, approved, denied, used, expired; `last`: the newest N, default 100, at most 1,000) |
/// | `GET /api/approvals/{id}` | one approval, with its details |
/// | `POST /api/approvals/{id}/approve` | approve it: `{"uses": N (default 1), "valid_for": "10m" (default: until it would have expired; at most 1d)}`, or no body for the defaults; owner or admin; 409 once decided or expired |
/// | `POST /api/approvals/{id}/deny` | deny it; owner or admin; 409 once decided or expired |
/// | `POST /api/approvals/{id}/revoke` | withdraw an approval given earlier: it admits nothing more; owner or admin; 409 unless approved and unexpired |
pub fn approvals_router<B>(state: ManageState<Store<B>>) -> Router
where
    B: Backend,
{
    Router::new()
        .route("/api/approvals", get(list_approvals::<B>))
        .route("/api/approvals/{id}", get(show_approval::<B>))
        .route("/api/approvals/{id}/approve", post(approve::<B>))
        .route("/api/approvals/{id}/deny", post(deny::<B>))
        .route("/api/approvals/{id}/revoke", post(revoke::<B>))
        .layer(SameOriginLayer::for_session_cookie())
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalQuery {
    /// An agent's slug.
    agent: Option<String>,
    status: Option<String>,
    /// The newest this many (default 100, at most 1000).
    last: Option<usize>,
}

/// An approval as the API shows it: the view, with its agent's slug.
async fn approval_view<B: Backend>(
    store: &Store<B>,
    approval: &Approval,
) -> Result<Value, ApiError> {
    let mut view = views::approval(approval, store.clock().now());
    view["agent"] = match store.agent(&approval.agent_id).await? {
        Some(agent) => json!(&*agent.slug),
        None => Value::Null,
    };
    Ok(view)
}

/// An id from a path: an approval id has no other shape, so no need to ask the store.
fn approval_id(id: &str) -> Result<ApprovalId, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(StoreError::NotFound(NotFound::Approval(crate::store::shortened(id))).into());
    }
    Ok(ApprovalId::from(id))
}

async fn list_approvals<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Params(query): Params<ApprovalQuery>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let mut filter = ApprovalFilter::all();
    if let Some(slug) = &query.agent {
        filter = filter.agent(by_slug(&state.store, slug).await?.id);
    }
    if let Some(status) = &query.status {
        let status = ApprovalStatus::parse(status)
            .ok_or_else(|| invalid("status: pending, approved, denied, used or expired"))?;
        filter = filter.status(status);
    }
    if let Some(last) = query.last {
        filter = filter.last(last);
    }
    let approvals = managed(&state, user).approvals(&filter).await?;
    let mut views = Vec::with_capacity(approvals.len());
    // One lookup per agent, not per approval.
    let mut slugs = std::collections::HashMap::new();
    let now = state.store.clock().now();
    for approval in &approvals {
        let mut view = views::approval(approval, now);
        if !slugs.contains_key(&approval.agent_id) {
            let slug = match state.store.agent(&approval.agent_id).await? {
                Some(agent) => json!(&*agent.slug),
                None => Value::Null,
            };
            slugs.insert(approval.agent_id.clone(), slug);
        }
        view["agent"] = slugs[&approval.agent_id].clone();
        views.push(view);
    }
    Ok(Json(Value::Array(views)))
}

async fn show_approval<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let approval = managed(&state, user).approval(&approval_id(&id)?).await?;
    Ok(Json(approval_view(&state.store, &approval).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Approve {
    uses: Option<u32>,
    /// A duration: `10m`, `3600`, `1d`.
    valid_for: Option<String>,
}

async fn approve<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(id): Path<String>,
    // Every field has a default: no body at all approves once, until it would have expired.
    OptionalBody(body): OptionalBody<Approve>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let mut bounds = ApprovalBounds::default();
    if let Some(uses) = body.uses {
        bounds = bounds.uses(uses);
    }
    if let Some(window) = &body.valid_for {
        let window = crate::server::parse_duration(window)
            .map_err(|_| invalid("valid_for: a duration (45s, 15m, 12h, 1d)"))?;
        bounds = bounds.valid_for(window);
    }
    let approved = managed(&state, user)
        .approve(&approval_id(&id)?, bounds)
        .await?;
    Ok(Json(approval_view(&state.store, &approved).await?))
}

async fn deny<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let denied = managed(&state, user).deny(&approval_id(&id)?).await?;
    Ok(Json(approval_view(&state.store, &denied).await?))
}

async fn revoke<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let user = person(&principal)?;
    let revoked = managed(&state, user)
        .revoke_approval(&approval_id(&id)?)
        .await?;
    Ok(Json(approval_view(&state.store, &revoked).await?))
}
