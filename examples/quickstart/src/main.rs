//! A minimal axum app protected by `AgentAuthLayer`, on the embedded SQLite store.
//!
//! `cargo run -p quickstart` opens (creating it on the first run)
//! `agent-auth.db` in the current directory, mints a token for a demo agent, prints it with
//! ready-to-paste curl lines and serves on 127.0.0.1:3000. Run it again: the file is reused and
//! the tokens of earlier runs still work. `PORT`, `AGENT_AUTH_DATABASE_URL` and
//! `AGENT_AUTH_TOKEN_PREFIX` override the port, the database and the token prefix (`agent`, as
//! the `agent-auth` CLI's default, so that the CLI's tokens for this database work here).

use axum::Router;
use axum::routing::{get, post};
use tower_agent_auth::axum::Require;
use tower_agent_auth::cache::{CacheConfig, CachingResolver, VerdictCache};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::store::{
    MemoryUserDirectory, NewAgent, NewToken, SqliteStore, StoreConfig, UserDirectory, UserRecord,
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

    // Agents and tokens live in one SQLite file; only SHA-256 hashes of tokens are kept.
    let database = std::env::var("AGENT_AUTH_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://agent-auth.db".into());
    let prefix = std::env::var("AGENT_AUTH_TOKEN_PREFIX").unwrap_or_else(|_| "agent".into());
    let config = StoreConfig::new(TokenFormat::new(&prefix)?, users.clone());
    let store = SqliteStore::open(&database, config).await?;
    let agent = match store.agent_by_slug("writer-bot").await? {
        Some(agent) => agent,
        None => {
            store
                .create_agent(NewAgent::new("writer-bot", "alice"))
                .await?
        }
    };
    let token = NewToken::new("quickstart").expires_in(std::time::Duration::from_secs(3600));
    let issued = store.create_token(&agent.id, token).await?;
    let now = issued.info.created_at;
    let live = store
        .list_tokens(&agent.id)
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|at| at > now))
        .count();

    // Verdicts kept in memory, so a valid token costs no query. The store's change log is
    // read every 250 ms: a token revoked with the `agent-auth` CLI in another terminal, or an
    // agent disabled, is refused here within a second. A user whose role the directory changes
    // moves its revision, which the cache checks on every hit.
    let revision = users.clone();
    let cache = VerdictCache::new(
        CacheConfig::new()
            .bound(std::time::Duration::from_secs(1))
            .follows_feed()
            .revision(move || revision.revision()),
    );
    tokio::spawn(cache.follow(store.clone()));

    let app = Router::new()
        .route("/me", get(me))
        .route("/posts", post(publish))
        .route("/users", post(manage_users))
        .layer(AgentAuthLayer::new(CachingResolver::new(
            store.clone(),
            cache,
        )));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let secret = issued.token.expose_secret();
    println!(
        "Database {database}: {live} live token(s) for `writer-bot`; earlier ones still work."
    );
    println!(
        "New token for `writer-bot`, acting for `alice` (shown once, valid 1 h):\n\n  {secret}\n"
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
    // Write the last-used times still buffered.
    store.flush_last_used().await?;
    Ok(())
}
