//! Every command but `serve`.

use std::error::Error;
use std::sync::Arc;

use serde_json::{Value, json};
use tower_agent_auth::approval::{
    Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus, canonical_json,
};
use tower_agent_auth::audit::{AuditFilter, AuditWriter, WriterOptions};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::principal::{TokenId, UserId};
use tower_agent_auth::server::{hash_password, views};
use tower_agent_auth::store::{
    AccessRole, Agent, AgentStatus, AgentType, Managed, NewAgent, NewToken, Operation, StoreError,
    TokenInfo, authorize,
};

use crate::backend::{self, Accounts};
use crate::output::{capabilities, count, list, out, parse_duration, print, print_one, warn};
use crate::store::{Store, agent};
use crate::{
    Actor, AgentCommand, ApprovalCommand, AuditArgs, ChildCommand, Cli, Command, GrantCommand,
    TokenCommand, UserCommand, dispatch, serve,
};
use tower_agent_auth::store::PoolSettings;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

pub async fn run(cli: Cli) -> Result<()> {
    // Only these create a missing SQLite file or the schema, or upgrade it; anything else on a
    // database without the current schema is a mistake (a mistyped path or URL).
    let migrate = matches!(cli.command, Command::Migrate | Command::Serve(_));
    let timeout =
        parse_duration(&cli.database_timeout).map_err(|e| format!("--database-timeout: {e}"))?;
    if timeout.is_zero() {
        return Err("--database-timeout: must be longer than zero".into());
    }
    let settings = PoolSettings::default().statement_timeout(timeout);
    let (backend, accounts) =
        backend::open(&cli.database_url, &cli.token_prefix, migrate, settings).await?;
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(backend, accounts, args).await,
        Command::User(command) => {
            dispatch!(backend, store => users(&store, &accounts, command, json).await)
        }
        Command::Migrate => {
            if json {
                out(json!({"migrated": true}))?;
            } else {
                out("database ready: migrations applied")?;
            }
            Ok(())
        }
        command => dispatch!(backend, store => manage(store, command, json).await),
    }
}

/// The password on the first line of stdin, hashed.
fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("the password on stdin is empty".into());
    }
    Ok(hash_password(password).map_err(|e| e.to_string())?)
}

/// Refuses to delete a user whose agents would be left without an owner, or whose grants would
/// pass to a later user of the same id.
async fn deletable<S: Store>(store: &S, id: &str) -> Result<()> {
    let agents = store.list_agents().await?;
    let owned: Vec<&str> = agents
        .iter()
        .filter(|a| a.owner.as_str() == id && a.parent.is_none())
        .map(|a| &*a.slug)
        .collect();
    if !owned.is_empty() {
        return Err(format!(
            "user {id} owns {} ({}); delete with `agent-auth agent delete` first",
            count(owned.len(), "agent"),
            owned.join(", ")
        )
        .into());
    }
    let mut granted = Vec::new();
    for agent in &agents {
        if store
            .grants(&agent.id)
            .await?
            .iter()
            .any(|g| g.user_id.as_str() == id)
        {
            granted.push(&*agent.slug);
        }
    }
    if !granted.is_empty() {
        return Err(format!(
            "user {id} has a role on {} ({}); withdraw with `agent-auth grant remove` first",
            count(granted.len(), "agent"),
            granted.join(", ")
        )
        .into());
    }
    Ok(())
}

async fn users<S: Store>(
    store: &S,
    accounts: &Accounts,
    command: UserCommand,
    json: bool,
) -> Result<()> {
    match command {
        UserCommand::Add {
            id,
            capabilities: caps,
            password_stdin,
        } => {
            let caps = caps
                .map(|c| capabilities("--capabilities", &c))
                .transpose()?;
            let hash = if password_stdin {
                Some(password_from_stdin()?)
            } else {
                None
            };
            accounts.add(&id, caps.as_ref(), hash).await?;
            let row = json!({"id": id, "capabilities": caps.map(|c| c.to_strings())});
            if json {
                out(row)?;
            } else {
                out(format!("user {id} added"))?;
            }
        }
        UserCommand::Passwd { id } => {
            accounts.set_password(&id, password_from_stdin()?).await?;
            done(json, &format!("password of user {id} set"))?;
        }
        UserCommand::SetRole {
            id,
            capabilities: caps,
            unrestricted: _,
        } => {
            // clap requires exactly one of --capabilities and --unrestricted.
            let caps = caps
                .map(|c| capabilities("--capabilities", &c))
                .transpose()?;
            accounts.set_role(&id, caps.as_ref()).await?;
            let role = caps.map_or_else(|| "*".to_owned(), |c| c.to_strings().join(","));
            done(json, &format!("user {id} now has the role {role}"))?;
        }
        UserCommand::Delete { id } => {
            deletable(store, &id).await?;
            accounts.delete(&id).await?;
            done(json, &format!("user {id} deleted"))?;
        }
        UserCommand::List => {
            let rows: Vec<Value> = accounts
                .list()
                .await?
                .into_iter()
                .map(|a| {
                    json!({
                        "id": a.id,
                        "capabilities": a.capabilities.map_or(json!("*"), |c| json!(c)),
                        "active": a.active,
                        "password": a.has_password,
                        "created_at": views::time(time::OffsetDateTime::from_unix_timestamp(a.created_at).ok()),
                    })
                })
                .collect();
            print(
                json,
                &rows,
                &["id", "capabilities", "active", "password", "created_at"],
            )?;
        }
        UserCommand::Disable { id } => {
            accounts.set_active(&id, false).await?;
            done(json, &format!("user {id} disabled"))?;
        }
        UserCommand::Enable { id } => {
            accounts.set_active(&id, true).await?;
            done(json, &format!("user {id} enabled"))?;
        }
    }
    Ok(())
}

fn done(json: bool, message: &str) -> std::io::Result<()> {
    if json {
        out(json!({"ok": true, "message": message}))
    } else {
        out(message)
    }
}

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
async fn confirm_delete<S: Store>(store: &S, actor: &UserId, target: &Agent) -> Result<()> {
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
async fn manage<S: Store>(store: S, command: Command, json: bool) -> Result<()> {
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let result = managed_command(&store, &writer, command, json).await;
    writer.shutdown().await;
    result
}

async fn managed_command<S: Store>(
    store: &S,
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
            if let Some(ttl) = &expires_in {
                new = new.expires_in(parse_duration(ttl)?);
            }
            if orchestrator {
                new = new.orchestrator();
            }
            let created = as_user(UserId::from(owner)).create_agent(new).await?;
            print_one(json, &views::agent(&created))?;
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
            if let Some(ttl) = &expires_in {
                new = new.expires_in(parse_duration(ttl)?);
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
            let rows = crate::delegation::token_rows(store, &tokens, json).await?;
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
                return crate::delegation::revoke_tree(store, &managed, &target, token_id, json)
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
            if let Some(ttl) = &expires_in {
                new = new.expires_in(parse_duration(ttl)?);
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
            let grace_period = parse_duration(&grace)?;
            let issued = as_actor(&who, &target)
                .rotate_token(&target.id, &TokenId::from(token_id), grace_period)
                .await?;
            warn("warning: this token is shown once and cannot be shown again; store it now");
            if json {
                out(views::issued(&issued))?;
            } else {
                out(format!(
                    "{}\nid: {}  replaces the old token, which stays valid for {grace}",
                    issued.token.expose_secret(),
                    issued.info.id
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
            if let Some(since) = &since {
                filter = filter.since(time::OffsetDateTime::now_utc() - parse_duration(since)?);
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
        Command::Approval(command) => approvals(store, writer, command, json).await?,
        command @ (Command::Task(_)
        | Command::Token(TokenCommand::Delegate { .. })
        | Command::Token(TokenCommand::Show { .. })) => {
            crate::delegation::run(store, writer, command, json).await?
        }
        Command::Migrate | Command::User(_) | Command::Serve(_) => {
            unreachable!("handled before a store is chosen")
        }
    }
    Ok(())
}

/// The agent an approval is of, by id (its slug is what people read).
async fn approval_agent<S: Store>(store: &S, approval: &Approval) -> Result<Agent> {
    Ok(store
        .agent(&approval.agent_id)
        .await?
        .ok_or_else(|| StoreError::UnknownAgent(approval.agent_id.to_string()))?)
}

/// An approval as the CLI shows it: the view, with its agent's slug.
async fn approval_row<S: Store>(store: &S, approval: &Approval) -> Result<Value> {
    let mut row = views::approval(approval, store.clock().now());
    row["agent"] = match store.agent(&approval.agent_id).await? {
        Some(agent) => json!(&*agent.slug),
        None => Value::Null,
    };
    Ok(row)
}

/// `approval list|show|approve|deny`: through `Managed` as `--as` (or, deciding, the agent's
/// owner); without `--as`, a list shows every approval, as `agent list` shows every agent.
async fn approvals<S: Store>(
    store: &S,
    writer: &AuditWriter,
    command: ApprovalCommand,
    json: bool,
) -> Result<()> {
    let as_user = |who: UserId| Managed::new(store, who).with_audit(writer);
    let by_id = |id: &str| -> Result<ApprovalId> {
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::UnknownApproval(id.chars().take(64).collect()).into());
        }
        Ok(ApprovalId::from(id))
    };
    match command {
        ApprovalCommand::List {
            agent: slug,
            status,
            last,
            actor: who,
        } => {
            if last > tower_agent_auth::approval::MAX_LISTED {
                return Err(
                    format!("--last: at most {}", tower_agent_auth::approval::MAX_LISTED).into(),
                );
            }
            let mut filter = ApprovalFilter::all().last(last);
            if let Some(slug) = &slug {
                filter = filter.agent(agent(store, slug).await?.id);
            }
            if let Some(status) = &status {
                let status = ApprovalStatus::parse(status).ok_or_else(|| {
                    format!("invalid status {status:?}: pending, approved, denied, used or expired")
                })?;
                filter = filter.status(status);
            }
            let listed = match &who.acting_user {
                Some(user) => {
                    as_user(UserId::from(user.as_str()))
                        .approvals(&filter)
                        .await?
                }
                None => store.list_approvals(&filter).await?,
            };
            let mut rows = Vec::with_capacity(listed.len());
            // One lookup per agent, not per approval.
            let mut slugs = std::collections::HashMap::new();
            for approval in &listed {
                let mut row = views::approval(approval, store.clock().now());
                if !slugs.contains_key(&approval.agent_id) {
                    let slug = store
                        .agent(&approval.agent_id)
                        .await?
                        .map_or(Value::Null, |agent| json!(&*agent.slug));
                    slugs.insert(approval.agent_id.clone(), slug);
                }
                row["agent"] = slugs[&approval.agent_id].clone();
                if !json {
                    row["details"] = approval
                        .details
                        .as_ref()
                        .map_or(Value::Null, |d| json!(canonical_json(d)));
                    row["request"] = json!(format!("{} {}", approval.method, approval.path));
                }
                rows.push(row);
            }
            print(
                json,
                &rows,
                &[
                    "id",
                    "status",
                    "agent",
                    "request",
                    "capability",
                    "binding_message",
                    "details",
                    "expires_at",
                    "decided_by",
                ],
            )?;
        }
        ApprovalCommand::Show { id, actor: who } => {
            let id = by_id(&id)?;
            let approval = match &who.acting_user {
                Some(user) => as_user(UserId::from(user.as_str())).approval(&id).await?,
                None => store
                    .approval(&id)
                    .await?
                    .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?,
            };
            print_one(json, &approval_row(store, &approval).await?)?;
        }
        ApprovalCommand::Approve {
            id,
            uses,
            valid_for,
            actor: who,
        } => {
            let id = by_id(&id)?;
            let mut bounds = ApprovalBounds::default().uses(uses);
            if let Some(window) = &valid_for {
                // The library's examples (30d, 2w) lie beyond an approval's longest window.
                let parsed = parse_duration(window).map_err(|_| {
                    format!(
                        "--for: invalid duration {window:?}: expected e.g. 90s, 15m, 12h or 1d (at most 1d)"
                    )
                })?;
                bounds = bounds.valid_for(parsed);
            }
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?;
            let target = approval_agent(store, &asked).await?;
            let approved = as_user(who.user_for(&target)).approve(&id, bounds).await?;
            if json {
                out(approval_row(store, &approved).await?)?;
            } else {
                out(format!(
                    "approval {id} approved: {} until {} ({})",
                    count(approved.uses.unwrap_or(1) as usize, "use"),
                    crate::output::cell(&views::time(Some(approved.expires_at))),
                    approved.binding_message
                ))?;
            }
        }
        ApprovalCommand::Deny { id, actor: who } => {
            let id = by_id(&id)?;
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?;
            let target = approval_agent(store, &asked).await?;
            let denied = as_user(who.user_for(&target)).deny(&id).await?;
            if json {
                out(approval_row(store, &denied).await?)?;
            } else {
                out(format!("approval {id} denied ({})", denied.binding_message))?;
            }
        }
        ApprovalCommand::Revoke { id, actor: who } => {
            let id = by_id(&id)?;
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?;
            let target = approval_agent(store, &asked).await?;
            let revoked = as_user(who.user_for(&target)).revoke_approval(&id).await?;
            if json {
                out(approval_row(store, &revoked).await?)?;
            } else {
                out(format!(
                    "approval {id} revoked: it admits nothing more ({})",
                    revoked.binding_message
                ))?;
            }
        }
        ApprovalCommand::Purge { older_than } => {
            let older_than =
                parse_duration(&older_than).map_err(|e| format!("--older-than: {e}"))?;
            let purged = store.purge_approvals(older_than).await?;
            if json {
                out(json!({"purged": purged}))?;
            } else {
                out(format!("{} purged", count(purged, "approval")))?;
            }
        }
    }
    Ok(())
}
