//! Every command but `serve`: each runs on either database, generic over the store's
//! [`Backend`].

mod approvals;
mod delegation;
mod manage;
mod oauth;
mod providers;
mod users;

use std::error::Error;

use serde_json::json;
use tower_agent_auth::error::StoreError;
use tower_agent_auth::store::{Agent, Backend, PoolSettings, Store};

use crate::args::{Cli, Command};
use crate::database;
use crate::output::out;
use crate::{dispatch, serve};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

pub async fn run(cli: Cli) -> Result<()> {
    // Only these create a missing SQLite file or the schema, or upgrade it; anything else on a
    // database without the current schema is a mistake (a mistyped path or URL).
    let migrate = matches!(cli.command, Command::Migrate | Command::Serve(_));
    let settings = PoolSettings::default().statement_timeout(cli.database_timeout);
    let (database, accounts) =
        database::open(&cli.database_url, &cli.token_prefix, migrate, settings).await?;
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(database, accounts, *args).await,
        Command::User(command) => {
            dispatch!(database, store => users::run(&store, &accounts, command, json).await)
        }
        Command::Migrate => {
            if json {
                out(json!({"migrated": true}))?;
            } else {
                out("database ready: migrations applied")?;
            }
            Ok(())
        }
        command @ (Command::Client(_) | Command::Connection(_)) => {
            dispatch!(database, store => oauth::run(&store, command, json).await)
        }
        Command::ProviderToken(command) => {
            dispatch!(database, store => providers::run(&store, command, json).await)
        }
        command => dispatch!(database, store => manage::run(store, command, json).await),
    }
}

/// The agent with this slug, or an error naming the slug.
async fn agent<B: Backend>(store: &Store<B>, slug: &str) -> std::result::Result<Agent, StoreError> {
    store
        .agent_by_slug(slug)
        .await?
        .ok_or_else(|| StoreError::unknown_agent(slug))
}

/// A change done: its message, or `{"ok": true, "message": …}` with `--json`.
fn done(json: bool, message: &str) -> std::io::Result<()> {
    if json {
        out(json!({"ok": true, "message": message}))
    } else {
        out(message)
    }
}
