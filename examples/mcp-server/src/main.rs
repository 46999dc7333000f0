//! `cargo run -p mcp-server`: the blog's MCP server on 127.0.0.1:3000 (`PORT`), its agents,
//! tokens, OAuth clients and approvals in `mcp-server.db` (`AGENT_AUTH_DATABASE_URL`).

use std::net::SocketAddr;

use mcp_server::{Accounts, Blog, CRITICAL, app, random_password};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::store::{NewAgent, NewToken, SqliteStore, StoreConfig};
use tower_agent_auth::token::TokenFormat;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let base = format!("http://127.0.0.1:{port}");

    // The person who signs in and consents; her agents never exceed her role.
    let accounts = Accounts::new();
    let password = random_password()?;
    let role = Policy::allow(CapabilitySet::parse(["mcp:*", CRITICAL])?);
    accounts.add("demo", role, &password).await?;

    let database = std::env::var("AGENT_AUTH_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://mcp-server.db".into());
    let config = StoreConfig::new(TokenFormat::new("agent")?, accounts.directory());
    let store = SqliteStore::open(&database, config).await?;

    // A supervised agent of hers, with a token for /mcp: its payments wait for her approval.
    let agent = match store.agent_by_slug("pay-bot").await? {
        Some(agent) => agent,
        None => {
            let agent = NewAgent::new("pay-bot", "demo").with_type(AgentType::Supervised);
            store.create_agent(agent).await?
        }
    };
    let token = NewToken::new("demo")
        .resource(format!("{base}/mcp"))
        .with_capabilities(CapabilitySet::parse([
            "mcp:connect",
            "mcp:tools:*",
            CRITICAL,
        ])?);
    let token = store.create_token(&agent.id, token).await?.token;

    let app = app(store, accounts, &base, Blog::new())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("MCP server: {base}/mcp (sign in as demo / {password}, new on every start)");
    println!("pay-bot's token (supervised): {}", token.expose_secret());
    // The sign-in limits and client registration count by the client's address.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
