//! OAuth clients, connections and agents' redirect allowlists (the authorization server's
//! records an operator manages).

use serde_json::{Value, json};
use tower_agent_auth::error::{NotFound, StoreError};
use tower_agent_auth::oauth::redirect::RedirectPattern;
use tower_agent_auth::oauth::{Client, Connection, NewClient, RegisteredClient};
use tower_agent_auth::principal::{AgentId, UserId};
use tower_agent_auth::store::{Backend, Store};

use super::{Result, done};
use crate::args::{ClientCommand, Command, ConnectionCommand};
use crate::output::{print, print_one, warn};

pub async fn run<B: Backend>(store: &Store<B>, command: Command, json: bool) -> Result<()> {
    match command {
        Command::Client(ClientCommand::Register {
            agent: Some(slug), ..
        }) => {
            let agent = super::agent(store, &slug).await?;
            let registered = store.register_agent_client(&agent.id).await?;
            print_registered(json, &registered)?;
        }
        Command::Client(ClientCommand::Register {
            name,
            redirect_uris,
            confidential,
            introspect,
            agent: None,
        }) => {
            let name = name.ok_or("--name is required")?;
            let mut new = NewClient::new(name);
            for uri in redirect_uris {
                new = new.redirect_uri(uri);
            }
            if confidential {
                new = new.confidential();
            }
            if introspect {
                new = new.may_introspect();
            }
            let registered = store.register_client(new).await?;
            print_registered(json, &registered)?;
        }
        Command::Client(ClientCommand::List) => {
            let rows: Vec<Value> = store.clients().await?.iter().map(client_view).collect();
            print(
                json,
                &rows,
                &["client_id", "kind", "name", "auth", "status"],
            )?;
        }
        Command::Client(ClientCommand::Show { id }) => {
            let client = store
                .client(&id)
                .await?
                .ok_or_else(|| StoreError::from(NotFound::Client(shortened(&id))))?;
            print_one(json, &client_view(&client))?;
        }
        Command::Client(ClientCommand::Revoke { id }) => {
            let client = store.revoke_client(&id).await?;
            done(json, &format!("client {} revoked", client.id))?;
        }
        Command::Connection(ConnectionCommand::List { user }) => {
            let user = user.map(UserId::from);
            let rows: Vec<Value> = store
                .connections(user.as_ref())
                .await?
                .iter()
                .map(connection_view)
                .collect();
            print(
                json,
                &rows,
                &["user", "client_id", "agent_id", "created_at"],
            )?;
        }
        Command::Connection(ConnectionCommand::Revoke { user, client }) => {
            let user = UserId::from(user);
            if !store.disconnect(&user, &client).await? {
                return Err(format!("{user} has no connection to {}", shortened(&client)).into());
            }
            done(
                json,
                &format!("{user} disconnected from {client}: its agent is disabled"),
            )?;
        }
        _ => unreachable!("only OAuth commands are routed here"),
    }
    Ok(())
}

/// A client just registered, with its secret (shown this once).
fn print_registered(json: bool, registered: &RegisteredClient) -> Result<()> {
    let mut view = client_view(&registered.client);
    if let Some(secret) = &registered.secret {
        view["client_secret"] = json!(secret.expose_secret());
        if !json {
            warn("the client secret is shown once: store it now");
        }
    }
    print_one(json, &view)?;
    Ok(())
}

/// Sets `agent`'s redirect allowlist from the patterns as typed.
pub async fn set_redirects<B: Backend>(
    store: &Store<B>,
    agent: &AgentId,
    patterns: &[String],
) -> Result<Client> {
    let parsed = patterns
        .iter()
        .map(|text| {
            RedirectPattern::parse(text)
                .map_err(|error| format!("--redirect-uri {text:?}: {error}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(store.set_agent_redirects(agent, &parsed).await?)
}

/// A client as the CLI shows it: never its secret's hash.
pub fn client_view(client: &Client) -> Value {
    let status = if client.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    };
    json!({
        "client_id": client.id,
        "kind": client.kind.as_str(),
        "agent_id": client.agent().map(|a| a.as_str()),
        "name": client.name,
        "redirect_uris": client.redirect_uris,
        "auth": client.auth.as_str(),
        "may_introspect": client.may_introspect,
        "status": status,
        "created_at": rfc3339(Some(client.created_at)),
        "last_used_at": rfc3339(client.last_used_at),
        "expires_at": rfc3339(client.expires_at),
        "revoked_at": rfc3339(client.revoked_at),
    })
}

fn connection_view(connection: &Connection) -> Value {
    json!({
        "user": connection.user.as_str(),
        "client_id": connection.client_id,
        "agent_id": connection.agent.as_str(),
        "created_at": rfc3339(Some(connection.created_at)),
    })
}

fn rfc3339(at: Option<time::OffsetDateTime>) -> Value {
    at.and_then(|at| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(Value::Null, Value::from)
}

/// An id as typed, cut short for a message (a pasted secret must not fill the terminal).
fn shortened(id: &str) -> String {
    id.chars().take(64).collect()
}
