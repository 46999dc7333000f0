//! For `benches/mcp_served.sh`: one trivial tool served over real HTTP twice, by the same rmcp
//! service, at `/bare` (rmcp alone) and at `/mcp` (behind `AgentAuthLayer` over a memory store
//! and `McpLayer`), so that wrk measures what the layers add to a tool call in one run.
//! Prints `listening on http://…` and a token for `/mcp`.
//!
//! `cargo run --release -p mcp-server --example served`

#[path = "../benches/common/mod.rs"]
mod common;

use axum::Router;
use axum::body::Body;
use tower::ServiceBuilder;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::mcp::McpLayer;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
use tower_agent_auth::token::TokenFormat;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let resource = format!("http://{address}/mcp");
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("agent")?, users);
    let agent = store.create_agent(NewAgent::new("bench", "alice")).await?;
    let token = NewToken::new("bench")
        .resource(&resource)
        .with_capabilities(CapabilitySet::parse(["mcp:connect", "mcp:tools:ping"])?);
    let token = store.create_token(&agent.id, token).await?;

    let rmcp = || common::rmcp(true);
    let layered = ServiceBuilder::new()
        .layer(
            AgentAuthLayer::new(store)
                .resource(&resource)
                .require_audience(),
        )
        .layer(McpLayer::new())
        .service(rmcp());
    let app = Router::new()
        .route_service("/bare", rmcp())
        .route_service("/mcp", layered)
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, Body::empty()) });

    println!("listening on http://{address}");
    println!("token {}", token.token.expose_secret());
    axum::serve(listener, app).await?;
    Ok(())
}
