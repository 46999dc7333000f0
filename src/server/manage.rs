use ::axum::extract::{Path, State};
use ::axum::response::{Html, IntoResponse, Response};
use ::axum::routing::{get, post, put};
use ::axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{Body, OptionalBody, Params};
use super::csrf::SameOriginLayer;
use super::error::ApiError;
use super::{pages, views};
use crate::approval::{Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus};
use crate::audit::{AuditFilter, AuditWriter};
use crate::ceiling::{CapabilitySet, Policy};
use crate::error::{NotFound, StoreError};
use crate::principal::{AgentId, AuthSource, Principal, TokenId, UserId};
use crate::store::{
    AccessRole, Agent, AgentStatus, AgentType, Backend, Managed, NewAgent, NewToken, Store,
};

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
        .route("/api/agents", get(list_agents::<B>).post(create_agent::<B>))
        .route(
            "/api/agents/{slug}",
            get(show_agent::<B>).delete(delete_agent::<B>),
        )
        .route("/api/agents/{slug}/disable", post(disable::<B>))
        .route("/api/agents/{slug}/enable", post(enable::<B>))
        .route("/api/agents/{slug}/policy", put(set_policy::<B>))
        .route(
            "/api/agents/{slug}/tokens",
            get(list_tokens::<B>).post(create_token::<B>),
        )
        .route(
            "/api/agents/{slug}/tokens/{id}",
            axum::routing::delete(revoke_token::<B>),
        )
        .route("/api/agents/{slug}/tokens/{id}/rotate", post(rotate::<B>))
        .route("/api/agents/{slug}/grants", get(list_grants::<B>))
        .route(
            "/api/agents/{slug}/grants/{user}",
            put(grant::<B>).delete(withdraw::<B>),
        )
        .route("/api/agents/{slug}/audit", get(audit::<B>))
        .layer(SameOriginLayer::for_session_cookie())
        .with_state(state)
}

/// The management API of [approvals](crate::approval): what supervised agents asked a
/// person's approval for, and the person's answer. The conventions of [`manage_router`] hold
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

/// The landing page, `GET /`: for a signed-in user, who they are, the agents they may see
/// (as `GET /api/agents` lists them) and a sign-out button; anyone else is redirected (`303`)
/// to `/login`. Everything shown is HTML-escaped. Needs the same
/// [`AgentAuthLayer`](crate::AgentAuthLayer) around it as [`manage_router`] (optional, with
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    since: Option<String>,
    until: Option<String>,
    /// The newest this many (default [`DEFAULT_EVENTS`], at most [`MAX_EVENTS`]).
    last: Option<usize>,
}

/// Events an audit query answers unless asked for fewer or more.
const DEFAULT_EVENTS: usize = 1_000;
/// The most events one audit query answers: a trail of millions is read a page at a time.
const MAX_EVENTS: usize = 10_000;

/// `since`/`until`: an RFC 3339 instant, or a duration before `now` (`1h`, `30d`, `3600`), as
/// on the command line.
fn instant(
    text: &Option<String>,
    now: time::OffsetDateTime,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    let bad = || invalid("since/until: an RFC 3339 instant or a duration ago (45s, 15m, 12h, 30d)");
    text.as_deref()
        .map(|t| {
            if let Ok(at) =
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            {
                return Ok(at);
            }
            let ago = super::parse_duration(t).map_err(|_| bad())?;
            time::Duration::try_from(ago)
                .ok()
                .and_then(|ago| now.checked_sub(ago))
                .ok_or_else(bad)
        })
        .transpose()
}

async fn audit<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
    Params(range): Params<Range>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let mut filter = AuditFilter::agent(agent.id.clone());
    let now = state.store.clock().now();
    filter.since = instant(&range.since, now)?;
    filter.until = instant(&range.until, now)?;
    let last = range.last.unwrap_or(DEFAULT_EVENTS);
    if last > MAX_EVENTS {
        return Err(invalid(format!("last: at most {MAX_EVENTS}")));
    }
    filter = filter.last(last);
    let events = managed.audit_events(&agent.id, filter).await?;
    Ok(Json(events.iter().map(views::event).collect()))
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
        let window = super::parse_duration(window)
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
