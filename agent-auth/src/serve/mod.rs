//! `agent-auth serve`: the reference server, assembled from the library's routers and layers
//! over the store the command line opened.
//!
//! One file per part: [`args`] (the flags), [`assembly`] (cache, limits, Redis, logs, the layers
//! around the application), [`demo`](mod@demo) (the demo API and its seed), [`listener`] (the accept loop
//! and shutdown), [`health`] (`/healthz`, `/readyz`) and [`deadline`] (the request-body
//! deadline); this file puts them together. [`sessions`] keeps the browser sessions on the
//! database.

mod args;
mod assembly;
mod deadline;
mod demo;
mod health;
mod listener;
mod mcp;
mod sessions;

pub use args::ServeArgs;

use std::error::Error;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::approval::Supervision;
use tower_agent_auth::audit::{AuditWriter, WriterOptions};
use tower_agent_auth::cache::ChangeFeed;
use tower_agent_auth::oauth::AuthorizationServer;
use tower_agent_auth::oauth::callback::{CallbackKey, CallbackReceiver, Provider};
use tower_agent_auth::oauth::document::{MetadataDocuments, TestTrust};
use tower_agent_auth::server::{
    Login, LoginLimits, LoginThrottle, ManageState, Pages, approvals_router, delegations_router,
    manage_router, tasks_router,
};
use tower_agent_auth::store::{Backend, Store};

use self::assembly::{LogNotifier, application, rate_limit, redis_connection, resolver};
use self::demo::{critical_set, demo, demo_seed};
use self::listener::{ConnectionLimits, accept_loop, bind_error};
use crate::database::{Accounts, Database};
use crate::dispatch;

/// The scopes a new OAuth client of the demo API is told to ask for.
const DEMO_SCOPES: [&str; 3] = ["posts:read", "posts:write", "payments:send"];

/// The `Host` values the demo's MCP server accepts (rmcp refuses others, against DNS
/// rebinding): the issuer's, and this node's address and loopback names.
fn mcp_hosts(issuer: &str, address: std::net::SocketAddr) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        address.to_string(),
    ];
    if let Some(authority) = issuer
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.into_parts().authority)
    {
        hosts.push(authority.host().to_owned());
        hosts.push(authority.as_str().to_owned());
    }
    hosts
}

/// Client ID Metadata Documents: accepted unless `--no-metadata-documents`; with the hidden
/// test switch, a test CA trusted and loopback hosts allowed (and a warning logged).
fn metadata_documents<B: Backend>(
    oauth: AuthorizationServer<B>,
    args: &ServeArgs,
) -> Result<AuthorizationServer<B>, Box<dyn Error>> {
    if args.no_metadata_documents {
        if args.test_metadata_document_ca.is_some() {
            return Err("--no-metadata-documents and a test CA for them: choose one".into());
        }
        return Ok(oauth);
    }
    let oauth = oauth.metadata_documents(MetadataDocuments::new());
    let Some(path) = &args.test_metadata_document_ca else {
        return Ok(oauth);
    };
    let pem =
        std::fs::read(path).map_err(|error| format!("the test CA {}: {error}", path.display()))?;
    let trust = TestTrust::from_pem(&pem)?.allow_loopback(true);
    tracing::warn!(
        ca = %path.display(),
        "FOR TESTS ONLY: metadata documents trust a test CA and loopback hosts"
    );
    Ok(oauth.metadata_documents_for_tests(trust))
}

pub async fn run(
    database: Database,
    accounts: Arc<Accounts>,
    args: ServeArgs,
) -> Result<(), Box<dyn Error>> {
    init_logging();
    let served = dispatch!(database.clone(), store => serve(store, accounts, args).await);
    // Last-used times of the final interval, so a restart loses none.
    if let Err(error) = dispatch!(database, store => store.flush_last_used().await) {
        tracing::warn!(%error, "last-used times not written");
    }
    served
}

/// The callback receiver's routes, when providers are configured (with the key they need).
fn callback_receiver<B: Backend>(
    store: &Store<B>,
    args: &ServeArgs,
    writer: &AuditWriter,
) -> Result<Router, Box<dyn Error>> {
    let (path, key) = match (&args.callback_providers, args.callback_key) {
        (None, None) => return Ok(Router::new()),
        (None, Some(_)) => return Err("--callback-key needs --callback-providers".into()),
        (Some(_), None) => {
            return Err("--callback-providers needs --callback-key (64 hex digits)".into());
        }
        (Some(path), Some(key)) => (path, key),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("--callback-providers {}: {error}", path.display()))?;
    let providers = Provider::from_json(&text)
        .map_err(|error| format!("--callback-providers {}: {error}", path.display()))?;
    let mut receiver =
        CallbackReceiver::new(store.clone(), CallbackKey::new(key)).audit(writer.clone());
    for provider in providers {
        tracing::info!(
            provider = provider.name(),
            redirect_uri = provider.redirect_uri(),
            "agents may be connected to this provider"
        );
        receiver = receiver
            .provider(provider)
            .map_err(|error| format!("--callback-providers: {error}"))?;
    }
    Ok(receiver.router())
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

async fn serve<B>(
    store: Store<B>,
    accounts: Arc<Accounts>,
    args: ServeArgs,
) -> Result<(), Box<dyn Error>>
where
    B: Backend,
    Store<B>: ChangeFeed,
{
    let limits = ConnectionLimits {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections.max(1),
    };
    let attempts = args.login_attempts;
    let throttle = LoginThrottle::new(LoginLimits {
        per_account_and_address: attempts,
        per_address: attempts.saturating_mul(NonZeroU32::new(6).unwrap_or(NonZeroU32::MIN)),
        per_account: attempts.saturating_mul(NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN)),
        window: args.login_window,
        ..LoginLimits::default()
    });
    let sessions = sessions::on_database(&accounts, args.session_lifetime).await?;
    let coalesce = args.audit_coalesce_requests;
    let audit_options = WriterOptions {
        coalesce_requests: (!coalesce.is_zero()).then_some(coalesce),
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(Arc::new(store.clone()), audit_options);
    // Checked before anything is logged: a flag that cannot work is one line.
    let callback = callback_receiver(&store, &args, &writer)?;
    if args.redis_secret.is_some() && args.redis_url.is_none() {
        return Err("--redis-secret needs --redis-url".into());
    }
    let redis = args
        .redis_url
        .as_deref()
        .map(|url| redis_connection(url, &args.redis_prefix))
        .transpose()?;
    let (resolver, cache) = resolver(&store, &args, redis.as_ref())?;
    let rate_limit = rate_limit(&args, redis.as_ref())?;
    let health = health::router(health::Readiness {
        database: Arc::new(store.clone()),
        redis: redis.clone(),
        cache: cache.clone(),
    });
    let auth = AgentAuthLayer::from_arc(resolver.clone())
        .optional()
        .with_session_resolver(sessions.clone())
        .audit(writer.clone());
    let manage = ManageState {
        store: store.clone(),
        audit: Some(writer.clone()),
    };
    let critical = critical_set(&args.critical_capabilities)?;
    tracing::info!(
        critical = ?critical.to_strings(),
        "supervised agents wait for a person's approval to use these capabilities"
    );
    let approval_lifetime = args.approval_lifetime;
    if approval_lifetime > tower_agent_auth::approval::MAX_LIFETIME {
        return Err("--approval-lifetime: at most 1d".into());
    }
    let supervision = Supervision::new(store.clone(), critical)
        .lifetime(approval_lifetime)
        .notifier(LogNotifier)
        .audit(writer.clone());
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {}", args.listen, bind_error(&error)))?;
    let address = listener.local_addr()?;
    // The authorization server, and the demo API as the resource its tokens are bound to.
    let base = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let mut oauth = AuthorizationServer::new(store.clone(), &base)
        .map_err(|error| format!("--issuer: {error}"))?
        .audit(writer.clone());
    let base = oauth.issuer().as_str().trim_end_matches('/').to_owned();
    let demo_resource = format!("{base}/demo");
    let mcp_resource = format!("{base}/mcp");
    oauth = oauth
        .resource(demo_resource.clone())
        .scopes_supported(DEMO_SCOPES);
    if args.demo {
        // The demo's MCP server: the apps a person connects are supervised, so its critical
        // tool waits for their approval.
        oauth = oauth
            .resource(mcp_resource.clone())
            .connection_agent_type(tower_agent_auth::principal::AgentType::Supervised);
    }
    oauth = metadata_documents(oauth, &args)?;
    if let Some(cache) = &cache {
        // A resource server introspects at each of its requests: answers reused while the
        // layer's verdict cache holds the token's verdict (within its bound), refusals
        // answered from that cache.
        oauth = oauth
            .introspection_reuse(args.cache_bound)
            .verdict_cache(cache.clone());
    }
    match args.consent_key {
        Some(key) => oauth = oauth.consent_key(key),
        None => {
            tracing::info!("no --consent-key: consent forms are bound with this node's own key")
        }
    }
    let demo_metadata = oauth
        .protected_resource(&demo_resource)
        .map_err(|error| format!("--issuer: {error}"))?;
    // The demo API admits tokens bound to it (or to no resource: the CLI's), and its 401s
    // point clients to its metadata.
    let demo_layer = AgentAuthLayer::from_arc(resolver.clone())
        .resource(&demo_resource)
        .resource_metadata(&demo_metadata.metadata_url())
        .and_then(|layer| layer.scope(&DEMO_SCOPES.join(" ")))
        .map_err(|error| format!("--issuer: {error}"))?;
    // The outer layer answers for the demo API too when it refuses a token before the demo
    // layer sees it (revoked, unknown): its challenges name the same metadata and scope.
    let auth = auth
        .resource_metadata(&demo_metadata.metadata_url())
        .and_then(|layer| layer.scope(&DEMO_SCOPES.join(" ")))
        .map_err(|error| format!("--issuer: {error}"))?;
    let mcp = if args.demo {
        let metadata = oauth
            .protected_resource(&mcp_resource)
            .map_err(|error| format!("--issuer: {error}"))?
            .scopes_supported(mcp::SCOPES)
            // The root document is the demo API's.
            .at_root(false);
        let auth = AgentAuthLayer::from_arc(resolver.clone())
            .audit(writer.clone())
            .resource(&mcp_resource)
            .require_audience()
            .resource_metadata(&metadata.metadata_url())
            .and_then(|layer| layer.scope(mcp::FIRST_SCOPE))
            .map_err(|error| format!("--issuer: {error}"))?;
        let hosts = mcp_hosts(oauth.issuer().as_str(), address);
        let routes = mcp::router(auth.clone(), supervision.clone(), hosts);
        Some((metadata, routes, auth))
    } else {
        None
    };
    let routes = Router::new()
        .merge(callback)
        .merge(oauth.router())
        .merge(demo_metadata.router())
        .merge(
            Login::new(sessions, accounts.clone())
                .secure_cookies(args.secure_cookies)
                .throttle(throttle)
                .trusted_proxies(args.trusted_proxies.iter().copied())
                .audit(writer.clone())
                .router(),
        )
        .merge(
            Pages::new(manage.clone())
                .secure_cookies(args.secure_cookies)
                .accounts(accounts.clone())
                .router(),
        )
        .merge(approvals_router(manage.clone()))
        .merge(tasks_router(manage.clone()))
        .merge(delegations_router(manage.clone()))
        .merge(manage_router(manage))
        .merge(demo(supervision.clone()).layer(demo_layer));
    // The MCP server's metadata is public; `/mcp` itself answers behind its own layer.
    let (routes, mcp) = match mcp {
        Some((metadata, mcp, auth)) => (routes.merge(metadata.router()), Some((mcp, auth))),
        None => (routes, None),
    };
    let body_timeout = args.body_timeout;
    let app = application(routes, rate_limit, auth, health, body_timeout, mcp);

    // Tests and scripts read this line to find the port.
    println!("listening on http://{address}");
    if args.demo {
        demo_seed(&store, &accounts, address).await?;
    }
    tracing::info!(
        %address,
        header_timeout = ?limits.header_timeout,
        idle_timeout = ?limits.idle_timeout,
        ?body_timeout,
        max_connections = limits.max_connections,
        "serving"
    );
    accept_loop(listener, app, &limits).await;
    tracing::info!("shutting down: flushing the audit trail");
    if !writer.shutdown_within(Duration::from_secs(30)).await {
        tracing::error!("the audit sink did not take the last events within 30 s; they are lost");
    }
    Ok(())
}
