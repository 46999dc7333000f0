//! The JSON listings: the providers configured, the tokens kept (metadata only, never a token)
//! and their deletion, with the management API's conventions (a session principal, JSON
//! errors, the access rule of credentials).

use ::axum::extract::{Path, State};
use ::axum::routing::get;
use ::axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};

use super::receiver::CallbackReceiver;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::StoreError;
use crate::principal::{AgentId, AuthSource, Principal, UserId};
use crate::server::ApiError;
use crate::server::views;
use crate::store::{Agent, Backend, Operation, authorize};

/// Its routes, under the receiver's state.
pub(super) fn routes<B: Backend>() -> Router<CallbackReceiver<B>> {
    Router::new()
        .route("/api/providers", get(providers::<B>))
        .route("/api/provider-tokens", get(all_tokens::<B>))
        .route("/api/agents/{slug}/provider-tokens", get(agent_tokens::<B>))
        .route(
            "/api/agents/{slug}/provider-tokens/{id}",
            ::axum::routing::delete(delete::<B>),
        )
}

fn person(principal: &Principal) -> Result<UserId, ApiError> {
    if principal.auth_source() == AuthSource::Session {
        Ok(principal.user_id().clone())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "provider tokens are managed by a signed-in user, not an agent token",
        ))
    }
}

async fn by_slug<B: Backend>(
    receiver: &CallbackReceiver<B>,
    slug: &str,
) -> Result<Agent, ApiError> {
    let unknown = || ApiError::from(StoreError::unknown_agent(crate::store::shortened(slug)));
    if !crate::token::valid_slug(slug) {
        return Err(unknown());
    }
    receiver
        .store
        .agent_by_slug(slug)
        .await?
        .ok_or_else(unknown)
}

/// `Ok` if `user` may do `operation` on `agent`; else the denial, audited as a read or as a
/// disconnection refused.
async fn allowed<B: Backend>(
    receiver: &CallbackReceiver<B>,
    user: &UserId,
    agent: &Agent,
    operation: Operation,
) -> Result<(), ApiError> {
    let role = receiver.store.role_of(&agent.id, user).await?;
    if let Err(error) = authorize(user, agent, role, operation) {
        let action = match operation {
            Operation::ListTokens => AuditAction::Read,
            _ => AuditAction::ProviderDisconnected,
        };
        receiver
            .record(
                AuditEvent::new(receiver.store.clock().now(), action, Outcome::Denied)
                    .agent(agent.id.clone())
                    .parent(agent.parent.clone())
                    .actor(user.clone())
                    .detail(format!("provider tokens: may not {}", operation.as_str())),
            )
            .await;
        return Err(error.into());
    }
    Ok(())
}

async fn providers<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    person(&principal)?;
    Ok(Json(
        receiver
            .providers
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "authorization_host": p.authorize_url.host_str(),
                    "scopes": p.scopes,
                    "redirect_uri": p.redirect_uri.as_str(),
                    "start": format!("/connect/{}", p.name),
                })
            })
            .collect(),
    ))
}

/// Every token on an agent `user` may list the credentials of, by agent then provider.
async fn all_tokens<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let user = person(&principal)?;
    let store = &receiver.store;
    let visible: std::collections::HashSet<AgentId> =
        store.agents_visible_to(&user).await?.into_iter().collect();
    let mut listed = Vec::new();
    let mut agents: std::collections::HashMap<AgentId, Option<Agent>> = Default::default();
    for token in store.backend().provider_tokens(None).await? {
        if !visible.contains(&token.agent) {
            continue;
        }
        if !agents.contains_key(&token.agent) {
            let agent = store.agent(&token.agent).await?;
            agents.insert(token.agent.clone(), agent);
        }
        let Some(Some(agent)) = agents.get(&token.agent) else {
            continue;
        };
        let role = store.role_of(&agent.id, &user).await?;
        if authorize(&user, agent, role, Operation::ListTokens).is_ok() {
            listed.push(views::provider_token(&token, &agent.slug));
        }
    }
    Ok(Json(Value::Array(listed)))
}

async fn agent_tokens<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = person(&principal)?;
    let agent = by_slug(&receiver, &slug).await?;
    allowed(&receiver, &user, &agent, Operation::ListTokens).await?;
    let tokens = receiver
        .store
        .backend()
        .provider_tokens(Some(&agent.id))
        .await?;
    Ok(Json(
        tokens
            .iter()
            .map(|t| views::provider_token(t, &agent.slug))
            .collect(),
    ))
}

async fn delete<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = person(&principal)?;
    let agent = by_slug(&receiver, &slug).await?;
    allowed(&receiver, &user, &agent, Operation::ManageAgent).await?;
    let backend = receiver.store.backend();
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such provider token on this agent",
        )
    };
    let token = backend.provider_token(&id).await?.ok_or_else(not_found)?;
    if token.agent != agent.id || !backend.delete_provider_token(&id).await? {
        return Err(not_found());
    }
    receiver
        .record(
            AuditEvent::new(
                receiver.store.clock().now(),
                AuditAction::ProviderDisconnected,
                Outcome::Success,
            )
            .agent(agent.id.clone())
            .parent(agent.parent.clone())
            .actor(user)
            .detail(format!("provider {}, token {}", token.provider, token.id)),
        )
        .await;
    Ok(Json(views::provider_token(&token, &agent.slug)))
}
