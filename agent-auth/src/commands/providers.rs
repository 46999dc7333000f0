//! `provider-token`: the tokens other services issued to agents through the server's callback
//! receiver (`serve --callback-providers`), kept sealed. Listed by their metadata — the
//! provider, the agent, who connected it, when, the scopes, the expiry — never a token; the
//! CLI holds no key and opens none.

use std::sync::Arc;

use serde_json::Value;
use tower_agent_auth::audit::{AuditAction, AuditEvent, AuditWriter, Outcome, WriterOptions};
use tower_agent_auth::principal::AgentId;
use tower_agent_auth::server::views;
use tower_agent_auth::store::{Backend, Store};

use super::{Result, agent, done};
use crate::args::ProviderTokenCommand;
use crate::output::print;

/// The slug of the agent `id`, or its id if it is gone.
async fn slug<B: Backend>(store: &Store<B>, id: &AgentId) -> Result<String> {
    Ok(store
        .agent(id)
        .await?
        .map_or_else(|| id.to_string(), |agent| agent.slug.to_string()))
}

pub async fn run<B: Backend>(
    store: &Store<B>,
    command: ProviderTokenCommand,
    json: bool,
) -> Result<()> {
    match command {
        ProviderTokenCommand::List { agent: only } => {
            let only = match only {
                Some(slug) => Some(agent(store, &slug).await?.id),
                None => None,
            };
            let mut rows: Vec<Value> = Vec::new();
            for token in store.backend().provider_tokens(only.as_ref()).await? {
                let slug = slug(store, &token.agent).await?;
                rows.push(views::provider_token(&token, &slug));
            }
            print(
                json,
                &rows,
                &[
                    "id",
                    "provider",
                    "agent",
                    "connected_by",
                    "connected_at",
                    "expires_at",
                    "scopes",
                ],
            )?;
        }
        ProviderTokenCommand::Delete { id, actor } => {
            let shown: String = id.chars().take(64).collect();
            let Some(token) = store.backend().provider_token(&id).await? else {
                return Err(format!("no provider token {shown}").into());
            };
            let target = store.agent(&token.agent).await?;
            if !store.backend().delete_provider_token(&id).await? {
                return Err(format!("no provider token {shown}").into());
            }
            if let Some(target) = target {
                let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
                writer
                    .record(
                        AuditEvent::new(
                            store.clock().now(),
                            AuditAction::ProviderDisconnected,
                            Outcome::Success,
                        )
                        .agent(target.id.clone())
                        .parent(target.parent.clone())
                        .actor(actor.user_for(&target))
                        .detail(format!(
                            "provider {}, token {} (from the command line)",
                            token.provider, token.id
                        )),
                    )
                    .await;
                writer.shutdown().await;
            }
            done(
                json,
                &format!(
                    "provider token {} deleted: {} is disconnected from {}",
                    token.id,
                    slug(store, &token.agent).await?,
                    token.provider
                ),
            )?;
        }
    }
    Ok(())
}
