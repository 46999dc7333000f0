//! A minimal axum app protected by `AgentAuthLayer`.
//!
//! `cargo run --example quickstart --features axum` mints a token for a demo agent, prints it
//! with ready-to-paste curl lines and serves on 127.0.0.1:3000 (`PORT` overrides the port).

use axum::Router;
use axum::routing::{get, post};
use tower_agent_auth::axum::Require;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::store::{
    AgentStore, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, TokenStore, UserRecord,
};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{AgentAuthLayer, Principal, capability};

capability!(
    /// May publish posts.
    PublishPosts = "posts:publish"
);
capability!(
    /// May manage users: the demo owner cannot, so neither can her agent.
    ManageUsers = "users:manage"
);

async fn me(principal: Principal) -> String {
    format!(
        "user={} agent={} via={} may_publish={}\n",
        principal.user_id(),
        principal.agent_ref().map_or("-", |agent| agent.slug()),
        principal.auth_source().as_str(),
        principal.can("posts:publish"),
    )
}

async fn publish(Require(principal, ..): Require<PublishPosts>) -> String {
    format!("published on behalf of {}\n", principal.user_id())
}

async fn manage_users(_: Require<ManageUsers>) -> &'static str {
    "unreachable for the demo agent\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The host application's users and what their roles allow.
    let users = MemoryUserDirectory::new();
    let editor = Policy::allow(CapabilitySet::parse(["posts:*", "comments:*"])?);
    users.insert(UserRecord::new("alice", editor));

    // An agent acting for alice, and a token for it (only its SHA-256 is kept).
    let store = MemoryStore::new(TokenFormat::new("demo")?, users);
    let agent = store
        .create_agent(NewAgent::new("writer-bot", "alice"))
        .await?;
    let token = NewToken::new("quickstart").expires_in(time::Duration::hours(1));
    let issued = store.create_token(&agent.id, token).await?;

    let app = Router::new()
        .route("/me", get(me))
        .route("/posts", post(publish))
        .route("/users", post(manage_users))
        .layer(AgentAuthLayer::new(store));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let secret = issued.token.expose_secret();
    println!(
        "Token for agent `writer-bot` acting for `alice` (shown once, valid 1 h):\n\n  {secret}\n"
    );
    println!("Try it:");
    println!("  curl -H 'Authorization: Bearer {secret}' {base}/me");
    println!("  curl -X POST -H 'Authorization: Bearer {secret}' {base}/posts");
    println!(
        "  curl -i -X POST -H 'Authorization: Bearer {secret}' {base}/users   # 403 insufficient_scope"
    );
    println!("  curl -i {base}/me                                                   # 401");
    println!("\nListening on {base} (Ctrl-C to stop)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
