//! `user …`: the reference server's users (its own table, beside the store's).

use serde_json::{Value, json};
use tower_agent_auth::server::{hash_password, views};
use tower_agent_auth::store::{Backend, Store};

use super::{Result, done};
use crate::args::UserCommand;
use crate::database::Accounts;
use crate::output::{capabilities, count, out, print};

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
async fn deletable<B: Backend>(store: &Store<B>, id: &str) -> Result<()> {
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

pub async fn run<B: Backend>(
    store: &Store<B>,
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
