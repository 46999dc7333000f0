//! `token delegate`, `token show`, `token revoke --tree` and `task complete`: delegation and
//! task scope from a terminal.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tower_agent_auth::audit::AuditWriter;
use tower_agent_auth::delegation::{Delegation, Delegator};
use tower_agent_auth::error::StoreError;
use tower_agent_auth::principal::{AgentId, TokenId, UserId};
use tower_agent_auth::server::views;
use tower_agent_auth::store::{Agent, Backend, Managed, Store, TokenInfo};

use super::{Result, agent};
use crate::args::{Command, TaskCommand, TokenCommand};
use crate::output::{capabilities, cell, count, out, print_one, warn};

/// The environment variable `token delegate` reads the parent token from.
pub const TOKEN_ENV: &str = "AGENT_AUTH_TOKEN";

/// The parent token: the first line of stdin with `--token-stdin`, else `AGENT_AUTH_TOKEN`.
/// Never an argument: the command line of a process is visible to every user of the machine.
fn parent_token(from_stdin: bool) -> Result<String> {
    let token = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim().to_owned()
    } else {
        std::env::var(TOKEN_ENV)
            .map_err(|_| {
                format!("no parent token: set {TOKEN_ENV}, or pass --token-stdin and pipe it in")
            })?
            .trim()
            .to_owned()
    };
    if token.is_empty() {
        return Err(if from_stdin {
            "the parent token on stdin is empty".into()
        } else {
            format!("{TOKEN_ENV} is empty").into()
        });
    }
    Ok(token)
}

/// The slug of the agent `id`, or the id when it is gone.
async fn slug_of<B: Backend>(store: &Store<B>, id: &AgentId) -> Result<Value> {
    Ok(match store.agent(id).await? {
        Some(agent) => json!(&*agent.slug),
        None => json!(id.as_str()),
    })
}

/// Tokens as `token list` shows them: for `--json`, the management API's view and the token's
/// `status` (live, revoked, completed, expired, exhausted); for a person, with the status and
/// the delegation and task columns (`depth`, `parent`, `task`, the orchestrator by slug,
/// `environment`, `delegated_by`).
pub async fn token_rows<B: Backend>(
    store: &Store<B>,
    tokens: &[TokenInfo],
    json: bool,
) -> Result<Vec<Value>> {
    let now = store.clock().now();
    let mut rows = Vec::with_capacity(tokens.len());
    for info in tokens {
        let mut row = views::token(info);
        row["status"] = json!(info.status_at(now).as_str());
        if !json {
            row["depth"] = json!(info.delegation_depth);
            row["parent"] = row["delegation_parent"].clone();
            row["task"] = row["task_id"].clone();
            if let Some(orchestrator) = &info.orchestrator {
                row["orchestrator"] = slug_of(store, orchestrator).await?;
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// `token revoke SLUG ID --tree`.
pub async fn revoke_tree<B: Backend>(
    store: &Store<B>,
    managed: &Managed<'_, Store<B>>,
    target: &Agent,
    token_id: String,
    json: bool,
) -> Result<()> {
    let id = TokenId::from(token_id);
    let before = store.token(&target.id, &id).await?;
    let revoked = managed.revoke_token_tree(&target.id, &id).await?;
    let root_was_live = before.is_some_and(|t| t.revoked_at.is_none());
    let delegated = if root_was_live {
        revoked.saturating_sub(1)
    } else {
        revoked
    };
    let slug = &*target.slug;
    let message = if root_was_live {
        format!(
            "token {id} of {slug} revoked with {}",
            count(delegated, "delegated token")
        )
    } else {
        format!(
            "token {id} of {slug} was already revoked; {} delegated from it revoked now",
            count(delegated, "token")
        )
    };
    if json {
        out(json!({
            "ok": true,
            "token_id": id.as_str(),
            "revoked": revoked,
            "delegated_revoked": delegated,
            "message": message,
        }))?;
    } else {
        out(message)?;
    }
    Ok(())
}

/// The owners whose agents hold a live, directly minted token of `task`.
async fn owners_serving<B: Backend>(store: &Store<B>, task: &str) -> Result<BTreeSet<UserId>> {
    let now = store.clock().now();
    let mut owners = BTreeSet::new();
    for agent in store.list_agents().await? {
        let serves = store.list_tokens(&agent.id).await?.iter().any(|t| {
            t.task_id.as_deref() == Some(task)
                && t.delegation_parent.is_none()
                && t.revoked_at.is_none()
                && t.task_completed_at.is_none()
                && t.expires_at.is_none_or(|at| at > now)
        });
        if serves {
            owners.insert(agent.owner.clone());
        }
    }
    Ok(owners)
}

pub async fn run<B: Backend>(
    store: &Store<B>,
    writer: &AuditWriter,
    command: Command,
    json: bool,
) -> Result<()> {
    match command {
        Command::Token(TokenCommand::Delegate {
            slug,
            label,
            capabilities: caps,
            expires_in,
            max_operations,
            expires_on_completion,
            task_id,
            intent,
            environment,
            token_stdin,
        }) => {
            let parent = parent_token(token_stdin)?;
            let target = agent(store, &slug).await?;
            let mut request = Delegation::to(target.id.clone(), label);
            if let Some(caps) = &caps {
                request = request.with_capabilities(capabilities("--capabilities", caps)?);
            }
            if let Some(ttl) = expires_in {
                request = request.expires_in(ttl);
            }
            if let Some(n) = max_operations {
                request = request.max_operations(n);
            }
            if expires_on_completion {
                request = request.expires_on_completion();
            }
            if let Some(task) = task_id {
                request = request.task_id(task);
            }
            if let Some(intent) = intent {
                request = request.intent(intent);
            }
            if let Some(environment) = environment {
                request = request.environment(environment);
            }
            let issued = Delegator::new(store)
                .with_audit(writer)
                .delegate(&parent, request)
                .await?;
            warn("warning: this token is shown once and cannot be shown again; store it now");
            if json {
                out(views::issued(&issued))?;
            } else {
                out(format!(
                    "{}\nid: {}  agent: {}  depth: {}  parent: {}  expires: {}",
                    issued.token.expose_secret(),
                    issued.info.id,
                    slug,
                    issued.info.delegation_depth,
                    cell(&json!(
                        issued.info.delegation_parent.as_ref().map(|t| t.as_str())
                    )),
                    cell(&views::time(issued.info.expires_at))
                ))?;
            }
        }
        Command::Token(TokenCommand::Show {
            slug,
            token_id,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            let id = TokenId::from(token_id);
            let managed = Managed::new(store, who.user_for(&target)).with_audit(writer);
            // Listing is what reading a token's metadata needs (operator, admin or owner).
            let tokens = managed.list_tokens(&target.id).await?;
            let info = tokens
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| StoreError::unknown_token(&slug, &id))?;
            let row = token_rows(store, std::slice::from_ref(&info), json)
                .await?
                .remove(0);
            print_one(json, &row)?;
        }
        Command::Task(TaskCommand::Complete {
            task_id,
            actor: who,
        }) => {
            let owners = match &who.acting_user {
                Some(user) => BTreeSet::from([UserId::from(user.as_str())]),
                None => owners_serving(store, &task_id).await?,
            };
            let mut ended = 0;
            for owner in owners {
                ended += Managed::new(store, owner)
                    .with_audit(writer)
                    .complete_task(&task_id)
                    .await?;
            }
            let message = format!("task {task_id} completed: {} ended", count(ended, "token"));
            if json {
                out(json!({"ok": true, "task_id": task_id, "ended": ended, "message": message}))?;
            } else {
                out(message)?;
            }
        }
        _ => unreachable!("routed here by managed_command"),
    }
    Ok(())
}
