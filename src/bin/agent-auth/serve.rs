//! `agent-auth serve`: the reference server.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use serde_json::{Value, json};
use tower_agent_auth::audit::{AuditWriter, WriterOptions};
use tower_agent_auth::axum::Require;
use tower_agent_auth::server::{ManageState, Sessions, login_router, manage_router};
use tower_agent_auth::store::UserDirectory;
use tower_agent_auth::{AgentAuthLayer, Principal, capability};

use crate::backend::{Accounts, Backend};
use crate::dispatch;
use crate::store::Store;

#[derive(Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Mark the session cookie `Secure` (when served behind HTTPS).
    #[arg(long)]
    secure_cookies: bool,
    /// How long a sign-in lasts.
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    session_lifetime: String,
    /// Seed a demo user and agent on first run, mint a demo token on every run, and print it
    /// with ready curl lines.
    #[arg(long)]
    demo: bool,
}

capability!(
    /// May read the demo posts.
    PostsRead = "posts:read"
);
capability!(
    /// May write demo posts.
    PostsWrite = "posts:write"
);

pub async fn run(
    backend: Backend,
    accounts: Arc<Accounts>,
    args: ServeArgs,
) -> Result<(), Box<dyn Error>> {
    init_logging();
    let served = dispatch!(backend.clone(), store => serve(store, accounts, args).await);
    // Last-used times of the final interval, so a restart loses none.
    if let Err(error) = dispatch!(backend, store => store.flush_last_used().await) {
        tracing::warn!(%error, "last-used times not written");
    }
    served
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The demo API: who am I, and two routes that need capabilities.
fn demo() -> Router {
    async fn me(principal: Principal) -> Json<Value> {
        Json(json!({
            "user": principal.user_id().as_str(),
            "agent": principal.agent_ref().map(|a| a.slug()),
            "auth_source": principal.auth_source().as_str(),
            "token_id": principal.token_id().map(|t| t.as_str()),
            "may_read_posts": principal.can("posts:read"),
            "may_write_posts": principal.can("posts:write"),
        }))
    }
    async fn list(Require(principal, _): Require<PostsRead>) -> Json<Value> {
        Json(json!({"posts": [], "read_by": principal.user_id().as_str()}))
    }
    async fn create(Require(principal, _): Require<PostsWrite>) -> (http::StatusCode, Json<Value>) {
        (
            http::StatusCode::CREATED,
            Json(json!({"created_by": principal.user_id().as_str(),
                        "agent": principal.agent_ref().map(|a| a.slug())})),
        )
    }
    Router::new()
        .route("/demo/me", get(me))
        .route("/demo/posts", get(list).post(create))
}

/// One log line per request: method, path without the query string, status, time. Never a
/// header, so never a token or a cookie.
async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn serve<S: Store + Send + Sync>(
    store: S,
    accounts: Arc<Accounts>,
    args: ServeArgs,
) -> Result<(), Box<dyn Error>> {
    let lifetime = crate::output::parse_duration(&args.session_lifetime)?;
    let directory: Arc<dyn UserDirectory> = accounts.clone();
    let sessions = Sessions::new(directory, lifetime);
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let auth = AgentAuthLayer::new(store.clone())
        .optional()
        .with_session_resolver(sessions.clone())
        .audit(writer.clone());
    let app = Router::new()
        .merge(login_router(
            sessions,
            accounts.clone(),
            args.secure_cookies,
        ))
        .merge(manage_router(ManageState {
            store: store.clone(),
            audit: Some(writer.clone()),
        }))
        .merge(demo())
        .layer(auth)
        .layer(middleware::from_fn(log));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("listening on http://{address}");
    if args.demo {
        demo_seed(&store, &accounts, address).await?;
    }
    tracing::info!(%address, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: flushing the audit trail");
    if !writer.shutdown_within(Duration::from_secs(30)).await {
        tracing::error!("the audit sink did not take the last events within 30 s; they are lost");
    }
    Ok(())
}

/// The demo: user `demo` (password printed on first run only) and agent `demo-bot`, and a fresh
/// one-hour token for it on every run.
async fn demo_seed<S: Store>(
    store: &S,
    accounts: &Accounts,
    address: SocketAddr,
) -> Result<(), Box<dyn Error>> {
    use tower_agent_auth::ceiling::{CapabilitySet, Policy};
    use tower_agent_auth::store::{NewAgent, NewToken};
    let first_run = !accounts.list().await?.iter().any(|a| a.id == "demo");
    if first_run {
        let mut secret = [0u8; 12];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        let password = hex::encode(secret);
        let hash = tower_agent_auth::server::hash_password_off_runtime(password.clone())
            .await
            .map_err(|e| e.to_string())?;
        accounts
            .add(
                "demo",
                Some(&CapabilitySet::parse(["posts:*"])?),
                Some(hash),
            )
            .await?;
        println!(
            "demo user: demo / {password}  (shown this once; sign in at http://{address}/login)"
        );
    }
    let agent = match store.agent_by_slug("demo-bot").await? {
        Some(agent) => agent,
        None => {
            store
                .create_agent(
                    NewAgent::new("demo-bot", "demo")
                        .with_policy(Policy::allow(CapabilitySet::parse(["posts:read"])?)),
                )
                .await?
        }
    };
    let issued = store
        .create_token(
            &agent.id,
            NewToken::new("demo").expires_in(std::time::Duration::from_secs(3600)),
        )
        .await?;
    let token = issued.token.expose_secret();
    println!("demo token for demo-bot (valid 1 h; may read posts, not write):");
    println!("  {token}");
    println!("  curl -H 'Authorization: Bearer {token}' http://{address}/demo/me");
    println!(
        "  curl -H 'Authorization: Bearer {token}' http://{address}/demo/posts            # 200"
    );
    println!(
        "  curl -X POST -H 'Authorization: Bearer {token}' http://{address}/demo/posts    # 403"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
