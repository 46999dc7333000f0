//! The commands on agents, tokens, children, grants, the audit trail, approvals and tasks:
//! through [`Managed`], as `--as` or the agent's owner, audited.

use std::sync::Arc;

use serde_json::{Value, json};
use tower_agent_auth::audit::{AuditFilter, AuditWriter, WriterOptions};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::principal::{TokenId, UserId};
use tower_agent_auth::server::views;
use tower_agent_auth::store::{
    AccessRole, Agent, AgentStatus, AgentType, Backend, Managed, NewAgent, NewToken, Operation,
    Store, TokenInfo, authorize,
};

use super::{Result, agent, done};
use crate::args::{
    Actor, AgentCommand, AuditArgs, ChildCommand, Command, GrantCommand, TokenCommand,
};
use crate::output::{capabilities, count, list, out, print, print_one, warn};

/// Whether a token would still be admitted (not revoked, expired or used up).
fn live(token: &TokenInfo, now: time::OffsetDateTime) -> bool {
    token.revoked_at.is_none()
        && token.task_completed_at.is_none()
        && token.expires_at.is_none_or(|at| at > now)
        && token.operations_remaining != Some(0)
}

/// Refuses to delete `target` without `--yes` when that would also delete child agents or
/// live tokens, naming how many. Asked only of a user who may delete it: anyone else gets
/// (and the audit trail records) the refusal from `Managed`.
async fn confirm_delete<B: Backend>(
    store: &Store<B>,
    actor: &UserId,
    target: &Agent,
) -> Result<()> {
    let mut role = store.role_of(&target.id, actor).await?;
    if let Some(parent) = &target.parent {
        role = role.max(store.role_of(parent, actor).await?);
    }
    if authorize(actor, target, role, Operation::ManageAgent).is_err() {
        return Ok(());
    }
    let children = store.children(&target.id).await?;
    let now = store.clock().now();
    let mut tokens = 0;
    for agent in std::iter::once(target).chain(&children) {
        tokens += store
            .list_tokens(&agent.id)
            .await?
            .iter()
            .filter(|t| live(t, now))
            .count();
    }
    if children.is_empty() && tokens == 0 {
        return Ok(());
    }
    let mut has = Vec::new();
    if !children.is_empty() {
        has.push(count(children.len(), "child agent"));
    }
    if tokens > 0 {
        has.push(count(tokens, "live token"));
    }
    Err(format!(
        "{} has {}; pass --yes to delete it with them",
        target.slug,
        has.join(" and ")
    )
    .into())
}

/// Runs a command through `Managed` (as `--as`, or the agent's owner), recording changes in
/// the database's audit trail.
pub async fn run<B: Backend>(store: Store<B>, command: Command, json: bool) -> Result<()> {
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let result = managed_command(&store, &writer, command, json).await;
    writer.shutdown().await;
    result
}

async fn managed_command<B: Backend>(
    store: &Store<B>,
    writer: &AuditWriter,
    command: Command,
    json: bool,
) -> Result<()> {
    let as_user = |who: UserId| Managed::new(store, who).with_audit(writer);
    // `--as USER`, or the agent's owner.
    let as_actor = |who: &Actor, agent: &Agent| as_user(who.user_for(agent));
    match command {
        Command::Agent(AgentCommand::Create {
            slug,
            owner,
            agent_type,
            capabilities: caps,
            deny,
            scopes,
            modes,
            expires_in,
            orchestrator,
            redirect_uris,
        }) => {
            let kind = AgentType::parse(&agent_type).ok_or_else(|| {
                format!("invalid agent type {agent_type:?}: autonomous, supervised or ephemeral")
            })?;
            let mut policy = match &caps {
                Some(caps) => Policy::allow(capabilities("--capabilities", caps)?),
                None => Policy::unrestricted(),
            };
            if let Some(deny) = &deny {
                policy = policy.with_deny(capabilities("--deny", deny)?);
            }
            let mut new = NewAgent::new(slug, owner.clone())
                .with_type(kind)
                .with_policy(policy);
            if let Some(scopes) = &scopes {
                new = new.with_scopes(list("--scopes", scopes)?);
            }
            if let Some(modes) = &modes {
                new = new.with_modes(list("--modes", modes)?);
            }
            if let Some(ttl) = expires_in {
                new = new.expires_in(ttl);
            }
            if orchestrator {
                new = new.orchestrator();
            }
            let created = as_user(UserId::from(owner)).create_agent(new).await?;
            if !redirect_uris.is_empty() {
                super::oauth::set_redirects(store, &created.id, &redirect_uris).await?;
            }
            print_one(json, &views::agent(&created))?;
        }
        Command::Agent(AgentCommand::SetRedirects {
            slug,
            redirect_uris,
        }) => {
            let target = agent(store, &slug).await?;
            let client = super::oauth::set_redirects(store, &target.id, &redirect_uris).await?;
            print_one(json, &super::oauth::client_view(&client))?;
        }
        Command::Agent(AgentCommand::List) => {
            let rows: Vec<Value> = store
                .list_agents()
                .await?
                .iter()
                .map(views::agent)
                .collect();
            print(
                json,
                &rows,
                &[
                    "slug",
                    "id",
                    "owner",
                    "type",
                    "status",
                    "parent",
                    "expires_at",
                    "last_used_at",
                ],
            )?;
        }
        Command::Agent(AgentCommand::Show { slug }) => {
            print_one(json, &views::agent(&agent(store, &slug).await?))?;
        }
        Command::Agent(AgentCommand::Disable { slug, actor: who }) => {
            let target = agent(store, &slug).await?;
            let changed = as_actor(&who, &target)
                .set_agent_status(&target.id, AgentStatus::Disabled)
                .await?;
            print_one(json, &views::agent(&changed))?;
        }
        Command::Agent(AgentCommand::Enable { slug, actor: who }) => {
            let target = agent(store, &slug).await?;
            let changed = as_actor(&who, &target)
                .set_agent_status(&target.id, AgentStatus::Active)
                .await?;
            print_one(json, &views::agent(&changed))?;
        }
        Command::Agent(AgentCommand::SetPolicy {
            slug,
            capabilities: caps,
            unrestricted: _,
            deny,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            let mut policy = match &caps {
                Some(caps) => Policy::allow(capabilities("--capabilities", caps)?),
                None => Policy::unrestricted(),
            };
            if let Some(deny) = &deny {
                policy = policy.with_deny(capabilities("--deny", deny)?);
            }
            let changed = as_actor(&who, &target)
                .set_agent_policy(&target.id, policy)
                .await?;
            print_one(json, &views::agent(&changed))?;
        }
        Command::Agent(AgentCommand::Delete {
            slug,
            yes,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            if !yes {
                confirm_delete(store, &who.user_for(&target), &target).await?;
            }
            as_actor(&who, &target).delete_agent(&target.id).await?;
            done(json, &format!("agent {slug} deleted with its tokens"))?;
        }
        Command::Child(ChildCommand::Retire { slug, actor: who }) => {
            let target = agent(store, &slug).await?;
            if target.parent.is_none() {
                return Err(format!(
                    "{slug} is not a child identity; delete agents with `agent delete`"
                )
                .into());
            }
            as_actor(&who, &target).delete_agent(&target.id).await?;
            done(json, &format!("identity {slug} retired with its tokens"))?;
        }
        Command::Token(TokenCommand::Create {
            slug,
            label,
            expires_in,
            capabilities: caps,
            max_operations,
            expires_on_completion,
            task_id,
            intent,
            environment,
            orchestrator,
            delegated_by,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            let mut new = NewToken::new(label);
            if let Some(environment) = environment {
                new = new.environment(environment);
            }
            if let Some(ttl) = expires_in {
                new = new.expires_in(ttl);
            }
            if let Some(caps) = &caps {
                new = new.with_capabilities(capabilities("--capabilities", caps)?);
            }
            if let Some(n) = max_operations {
                new = new.max_operations(n);
            }
            if expires_on_completion {
                new = new.expires_on_completion();
            }
            if let Some(task) = task_id {
                new = new.task_id(task);
            }
            if let Some(intent) = intent {
                new = new.intent(intent);
            }
            let issued = match (&orchestrator, &delegated_by) {
                (Some(orchestrator), Some(person)) => {
                    let conductor = agent(store, orchestrator).await?;
                    as_actor(&who, &target)
                        .issue_task_token(
                            &conductor.id,
                            &target.id,
                            &UserId::from(person.as_str()),
                            new,
                        )
                        .await?
                }
                _ => {
                    as_actor(&who, &target)
                        .create_token(&target.id, new)
                        .await?
                }
            };
            warn("warning: this token is shown once and cannot be shown again; store it now");
            if json {
                out(views::issued(&issued))?;
            } else {
                out(format!(
                    "{}\nid: {}  agent: {}  expires: {}",
                    issued.token.expose_secret(),
                    issued.info.id,
                    slug,
                    crate::output::cell(&views::time(issued.info.expires_at))
                ))?;
            }
        }
        Command::Token(TokenCommand::List { slug, actor: who }) => {
            let target = agent(store, &slug).await?;
            let tokens = as_actor(&who, &target).list_tokens(&target.id).await?;
            let rows = super::delegation::token_rows(store, &tokens, json).await?;
            print(
                json,
                &rows,
                &[
                    "id",
                    "display_prefix",
                    "label",
                    "status",
                    "created_at",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                    "operations_remaining",
                    "depth",
                    "parent",
                    "task",
                    "orchestrator",
                    "environment",
                    "delegated_by",
                ],
            )?;
        }
        Command::Token(TokenCommand::Revoke {
            slug,
            token_id,
            tree,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            if tree {
                let managed = as_actor(&who, &target);
                return super::delegation::revoke_tree(store, &managed, &target, token_id, json)
                    .await;
            }
            let id = TokenId::from(token_id);
            // Revoking is idempotent (exit 0), but says so when there was nothing to do.
            let before = store.token(&target.id, &id).await?;
            let info = as_actor(&who, &target)
                .revoke_token(&target.id, &id)
                .await?;
            let already = before.is_some_and(|t| t.revoked_at.is_some());
            if json {
                let mut row = views::token(&info);
                row["already_revoked"] = json!(already);
                out(row)?;
            } else if already {
                let at = crate::output::cell(&views::time(info.revoked_at));
                out(format!(
                    "token {} of {slug} was already revoked at {at}",
                    info.id
                ))?;
            } else {
                out(format!("token {} of {slug} revoked", info.id))?;
            }
        }
        Command::Token(TokenCommand::RevokeAll { slug, actor: who }) => {
            let target = agent(store, &slug).await?;
            let n = as_actor(&who, &target)
                .revoke_all_tokens(&target.id)
                .await?;
            let message = format!("{} of {slug} revoked", count(n, "token"));
            if json {
                out(json!({"ok": true, "revoked": n, "message": message}))?;
            } else {
                out(message)?;
            }
        }
        Command::Child(ChildCommand::Create {
            parent,
            slug,
            capabilities: caps,
            scopes,
            modes,
            expires_in,
            actor: who,
        }) => {
            let parent = agent(store, &parent).await?;
            let mut new = NewAgent::child(slug, parent.id.clone());
            if let Some(caps) = &caps {
                new = new.with_policy(Policy::allow(capabilities("--capabilities", caps)?));
            }
            if let Some(scopes) = &scopes {
                new = new.with_scopes(list("--scopes", scopes)?);
            }
            if let Some(modes) = &modes {
                new = new.with_modes(list("--modes", modes)?);
            }
            if let Some(ttl) = expires_in {
                new = new.expires_in(ttl);
            }
            let child = as_actor(&who, &parent).create_agent(new).await?;
            print_one(json, &views::agent(&child))?;
        }
        Command::Child(ChildCommand::List { parent }) => {
            let parent = agent(store, &parent).await?;
            let rows: Vec<Value> = store
                .children(&parent.id)
                .await?
                .iter()
                .map(views::agent)
                .collect();
            print(
                json,
                &rows,
                &[
                    "slug",
                    "id",
                    "status",
                    "scopes",
                    "modes",
                    "expires_at",
                    "last_used_at",
                ],
            )?;
        }
        Command::Token(TokenCommand::Rotate {
            slug,
            token_id,
            grace,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            let issued = as_actor(&who, &target)
                .rotate_token(&target.id, &TokenId::from(token_id), grace)
                .await?;
            warn("warning: this token is shown once and cannot be shown again; store it now");
            if json {
                out(views::issued(&issued))?;
            } else {
                out(format!(
                    "{}\nid: {}  replaces the old token, which stays valid for {}",
                    issued.token.expose_secret(),
                    issued.info.id,
                    crate::duration::shown(grace)
                ))?;
            }
        }
        Command::Grant(GrantCommand::Add {
            slug,
            user,
            role,
            actor: who,
        }) => {
            let role = AccessRole::parse(&role)
                .ok_or_else(|| format!("invalid role {role:?}: admin, operator or viewer"))?;
            let target = agent(store, &slug).await?;
            let grant = as_actor(&who, &target)
                .grant(&target.id, &UserId::from(user), role)
                .await?;
            print_one(json, &views::grant(&grant))?;
        }
        Command::Grant(GrantCommand::Remove {
            slug,
            user,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            as_actor(&who, &target)
                .revoke_grant(&target.id, &UserId::from(user.as_str()))
                .await?;
            done(json, &format!("{user} has no role on {slug} any more"))?;
        }
        Command::Grant(GrantCommand::List { slug }) => {
            let target = agent(store, &slug).await?;
            let rows: Vec<Value> = store
                .grants(&target.id)
                .await?
                .iter()
                .map(views::grant)
                .collect();
            print(json, &rows, &["user", "role", "granted_at"])?;
        }
        Command::Audit(AuditArgs {
            slug,
            since,
            token,
            without_children,
            last,
            actor: who,
        }) => {
            let target = agent(store, &slug).await?;
            let mut filter = AuditFilter::agent(target.id.clone()).last(last);
            if without_children {
                filter = filter.without_children();
            }
            if let Some(since) = since {
                filter = filter.since(time::OffsetDateTime::now_utc() - since);
            }
            filter.token = token.map(TokenId::from);
            let events = as_actor(&who, &target)
                .audit_events(&target.id, filter)
                .await?;
            let rows: Vec<Value> = events
                .iter()
                .map(|e| {
                    let mut row = views::event(e);
                    row["request"] = e.request.as_ref().map_or(Value::Null, |r| {
                        json!(format!("{} {} {}", r.method, r.path, r.status))
                    });
                    // The agents it acted under, nearest the person first.
                    row["delegation_chain"] = match e.delegation_chain.as_slice() {
                        [] => Value::Null,
                        chain => json!(
                            chain
                                .iter()
                                .map(|a| a.as_str())
                                .collect::<Vec<_>>()
                                .join(" > ")
                        ),
                    };
                    row
                })
                .collect();
            let rows = if json {
                events.iter().map(views::event).collect()
            } else {
                rows
            };
            print(
                json,
                &rows,
                &[
                    "at",
                    "action",
                    "outcome",
                    "reason",
                    "agent_id",
                    "token_id",
                    "actor",
                    "delegation_chain",
                    "task_id",
                    "request",
                    "detail",
                ],
            )?;
            if events.len() == last && last > 0 {
                warn(&format!(
                    "the newest {last} events; --last N for more, or --since to narrow"
                ));
            }
        }
        Command::Approval(command) => super::approvals::run(store, writer, command, json).await?,
        command @ (Command::Task(_)
        | Command::Token(TokenCommand::Delegate { .. })
        | Command::Token(TokenCommand::Show { .. })) => {
            super::delegation::run(store, writer, command, json).await?
        }
        Command::Migrate
        | Command::User(_)
        | Command::Serve(_)
        | Command::Client(_)
        | Command::Connection(_)
        | Command::ProviderToken(_) => {
            unreachable!("handled before a store is chosen")
        }
    }
    Ok(())
}
