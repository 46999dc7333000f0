//! `agent-auth serve`: the reference server.

use std::error::Error;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_agent_auth::approval::{Approval, ApprovalNotifier, CriticalAction, Supervision};
use tower_agent_auth::audit::{AuditWriter, WriterOptions};
use tower_agent_auth::axum::Require;
use tower_agent_auth::cache::{
    CacheConfig, CachingResolver, ChangeFeed, RedisSecondLevel, VerdictCache,
};
use tower_agent_auth::ceiling::CapabilitySet;
use tower_agent_auth::limit::{Rate, RateLimitLayer, RateLimits, RedisCounter};
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::reason::InvalidReason;
use tower_agent_auth::server::{
    Login, LoginLimits, LoginThrottle, ManageState, Sessions, approvals_router, catch_panics,
    delegations_router, home_router, manage_router, tasks_router,
};
use tower_agent_auth::store::UserDirectory;
use tower_agent_auth::{AgentAuthLayer, Principal, TokenResolver, capability};
use tower_service::Service;

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
    /// Close a connection whose request head has not fully arrived this long after the server
    /// began waiting for it (also how long a keep-alive connection may wait between requests).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    header_timeout: String,
    /// Close a connection on which nothing arrives or leaves for this long while a request is
    /// read, handled or answered (a stalled body, a client that stopped reading).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    idle_timeout: String,
    /// Answer 408 (and close the connection) when a request's body has not arrived in full this
    /// long after its head: a body trickled a byte at a time cannot hold a connection.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    body_timeout: String,
    /// Serve at most this many connections at once; more wait in the kernel's queue.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Sign-in attempts allowed per account and client address in each --login-window (per
    /// address: 6 times this; per account from new addresses: 4 times this).
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN))]
    login_attempts: NonZeroU32,
    /// The window the sign-in limits refill over.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    login_window: String,
    /// A reverse proxy (address or CIDR, repeatable) whose X-Forwarded-For names the client
    /// the sign-in limits count; by default the header is never believed.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// A capability (or pattern, `payments:*`) whose use by a supervised agent waits for a
    /// person's approval; repeatable. `payments:send` (what the demo's `POST /demo/payments`
    /// needs) is always critical: values given add to it, never replace it. The effective set
    /// is logged at startup.
    #[arg(long = "critical-capability", value_name = "CAP")]
    critical_capabilities: Vec<String>,
    /// How long an approval waits for a person's decision.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    approval_lifetime: String,
    /// How soon a change made anywhere (a token revoked through another node or by the CLI,
    /// an agent disabled, a user deactivated) is obeyed here. Verdicts are kept in memory and
    /// the database's change log is read four times per interval; on PostgreSQL its notices
    /// usually bring a change within milliseconds. Past the interval without an answer from
    /// the database, nothing is answered from memory.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    cache_bound: String,
    /// Identical successful requests of one token (same method, path and status) within this
    /// interval are one audit row that counts them, instead of a database write per request;
    /// 0 writes a row per request. Refusals are always counted so (one row a minute).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    audit_coalesce_requests: String,
    /// Ask the database on every request instead of keeping verdicts in memory.
    #[arg(long)]
    no_cache: bool,
    /// Redis shared by the nodes (redis://host:port): the counters of the rate limits, exact
    /// across nodes, and a second-level verdict cache. Without it, rate limits count per node.
    #[arg(
        long,
        env = "AGENT_AUTH_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    redis_url: Option<String>,
    /// The secret the nodes share to tag the verdicts they keep in Redis (at least 32
    /// characters; best from the environment): whoever can write to Redis without it cannot
    /// make a node admit a token. Without it, Redis counts rate limits only and verdicts are
    /// not shared. Give it in the environment: a command line is visible to every local user.
    #[arg(
        long,
        env = "AGENT_AUTH_REDIS_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    redis_secret: Option<String>,
    /// The prefix of every key written to Redis (one per application sharing a server).
    #[arg(long, value_name = "PREFIX", default_value = tower_agent_auth::cache::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// Requests each token may make per window, e.g. 100/1m; more are answered 429 with
    /// Retry-After (and spend no use).
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    rate_limit_per_token: Option<Rate>,
    /// Requests each agent may make per window, all its tokens together, e.g. 1000/1h.
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    rate_limit_per_agent: Option<Rate>,
    /// The per-token limit for agents of one type, in place of --rate-limit-per-token:
    /// TYPE=N/DURATION (ephemeral=10/1s); repeatable.
    #[arg(long = "rate-limit-per-token-for", value_name = "TYPE=N/DURATION", value_parser = parse_typed_rate)]
    rate_limits_per_token_for: Vec<(AgentType, Rate)>,
    /// The per-agent limit for agents of one type, in place of --rate-limit-per-agent:
    /// TYPE=N/DURATION; repeatable.
    #[arg(long = "rate-limit-per-agent-for", value_name = "TYPE=N/DURATION", value_parser = parse_typed_rate)]
    rate_limits_per_agent_for: Vec<(AgentType, Rate)>,
}

/// `N/DURATION`: `100/1m`, `5/1s`.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let (requests, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: requests per window, N/DURATION (100/1m)"))?;
    let requests: u64 = requests
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {requests:?} is not a number of requests"))?;
    if requests == 0 {
        return Err(format!(
            "{text:?}: at least 1 request per window (to refuse an agent, disable it)"
        ));
    }
    let window = crate::output::parse_duration(window.trim())
        .map_err(|error| format!("{text:?}: {error}"))?;
    if window.is_zero() {
        return Err(format!("{text:?}: the window must be more than 0"));
    }
    Ok(Rate::new(requests, window))
}

/// `TYPE=N/DURATION`: `ephemeral=10/1s`.
fn parse_typed_rate(text: &str) -> Result<(AgentType, Rate), String> {
    let (agent_type, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: TYPE=N/DURATION (ephemeral=10/1s)"))?;
    let agent_type = AgentType::parse(agent_type.trim())
        .ok_or_else(|| format!("{text:?}: {agent_type:?} is not an agent type"))?;
    Ok((agent_type, parse_rate(rate)?))
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?}: an address or a CIDR block (10.0.0.0/8)"))
}

/// The connection limits of `serve`.
struct ConnectionLimits {
    header_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
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

/// A demo payment: what `POST /demo/payments` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Payment {
    amount: u64,
    currency: String,
    to: String,
}

/// `POST /demo/payments`: needs `payments:send`, and a supervised agent's payment waits for a
/// person's approval of exactly this payment (amount, currency, payee).
async fn pay<S: Store + Send + Sync>(
    axum::extract::State(supervision): axum::extract::State<Supervision<S>>,
    principal: Principal,
    uri: http::Uri,
    payment: Result<Json<Payment>, axum::extract::rejection::JsonRejection>,
) -> Result<(http::StatusCode, Json<Value>), Response> {
    use axum::response::IntoResponse;
    let invalid = |message: &str| {
        (
            http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "invalid", "message": message})),
        )
            .into_response()
    };
    let Json(mut payment) = payment
        .map_err(|_| invalid("body: {\"amount\": N, \"currency\": \"EUR\", \"to\": \"…\"}"))?;
    if payment.amount == 0
        || payment.currency.len() != 3
        || !payment.currency.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(invalid("amount: more than 0; currency: 3 capital letters"));
    }
    payment.to = payee(&payment.to).map_err(|message| invalid(&message))?;
    let action = CriticalAction::new("payments:send", &http::Method::POST, uri.path())
        .details(json!({
            "type": "payment",
            "amount": payment.amount,
            "currency": payment.currency,
            "to": payment.to,
        }))
        .message(format!(
            "Pay {} {} to {}",
            payment.amount, payment.currency, payment.to
        ));
    supervision
        .check(&principal, &action)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((
        http::StatusCode::CREATED,
        Json(json!({
            "paid": {"amount": payment.amount, "currency": payment.currency, "to": payment.to},
            "by": principal.user_id().as_str(),
            "agent": principal.agent_ref().map(|a| a.slug()),
        })),
    ))
}

/// The demo API: who am I, two routes that need capabilities, and a critical one.
fn demo<S: Store + Send + Sync>(supervision: Supervision<S>) -> Router {
    async fn me(principal: Principal) -> Json<Value> {
        Json(json!({
            "user": principal.user_id().as_str(),
            "agent": principal.agent_ref().map(|a| a.slug()),
            "auth_source": principal.auth_source().as_str(),
            "token_id": principal.token_id().map(|t| t.as_str()),
            "delegation_depth": principal.delegation_depth(),
            "delegation_chain": principal
                .delegation_chain()
                .iter()
                .map(|link| link.agent().slug())
                .collect::<Vec<_>>(),
            "task": principal.task().map(|task| json!({
                "task_id": task.task_id.as_deref(),
                "intent": task.intent.as_deref(),
                "environment": task.environment.as_deref(),
                "orchestrator": task.orchestrator.as_ref().map(|a| a.as_str()),
                "delegated_by": task.delegated_by.as_ref().map(|u| u.as_str()),
            })),
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
        // The cheapest route behind the layer: what the layer costs, measured against
        // `/healthz` (the same answer without it).
        .route("/demo/ping", get(|_: Principal| async { "ok\n" }))
        .route("/demo/posts", get(list).post(create))
        .route(
            "/demo/payments",
            axum::routing::post(pay::<S>).with_state(supervision),
        )
}

/// The longest payee, in bytes: "Pay {u64} {XYZ} to " takes at most 32 of a binding
/// message's 200.
const MAX_PAYEE: usize = 160;

/// The payee, as the person will read it ("Pay 50 EUR to ACME"): surrounding whitespace
/// trimmed, and what is left must read as it is; refused in the agent's own terms (`to: …`),
/// not as the binding message's rules, which the agent did not write.
fn payee(to: &str) -> Result<String, String> {
    let to = to.trim();
    if to.is_empty() || to.chars().count() > 64 || to.len() > MAX_PAYEE {
        return Err(format!(
            "to: 1-64 characters, at most {MAX_PAYEE} bytes of UTF-8"
        ));
    }
    tower_agent_auth::approval::check_readable(to).map_err(|why| format!("to: {why}"))?;
    Ok(to.to_owned())
}

/// What the demo's payments need, critical whatever else is named.
const ALWAYS_CRITICAL: &str = "payments:send";

/// The critical capabilities: `payments:send` and those given (`--critical-capability`).
fn critical_set(given: &[String]) -> Result<CapabilitySet, String> {
    let mut names = vec![ALWAYS_CRITICAL.to_owned()];
    names.extend(given.iter().cloned());
    CapabilitySet::parse(&names).map_err(|e| format!("--critical-capability: {e}"))
}

/// Tells the person through the server's log: the reference server has no mail or chat.
struct LogNotifier;

#[tower_agent_auth::async_trait]
impl ApprovalNotifier for LogNotifier {
    async fn notify(&self, approval: &Approval) -> Result<(), tower_agent_auth::reason::BoxError> {
        tracing::info!(
            approval = %approval.id,
            owner = %approval.owner,
            // Quoted, under its own name: `message` is tracing's own field, printed bare, so a
            // message could spoof `approval=… owner=…` fields of the line.
            binding_message = ?approval.binding_message,
            "approval requested; answer with `agent-auth approval approve|deny {}`",
            approval.id
        );
        Ok(())
    }
}

/// One log line per request: method, path without the query string, status, time, and for a
/// refused token the reason the layer attached to the response (`revoked`, `expired`, …).
/// Never a header, so never a token or a cookie.
async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let reason = response
        .extensions()
        .get::<InvalidReason>()
        .map(InvalidReason::as_str);
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        reason,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The whole application as `serve` runs it: the routers and the auth layer inside the panic
/// guard, the request-body deadline around them, and the request log outside it all (so a
/// panic's 500 and a 408 are logged like any answer).
fn application(
    routes: Router,
    rate_limit: Option<RateLimitLayer>,
    auth: AgentAuthLayer,
    health: Router,
    body_timeout: Duration,
) -> Router {
    // Inside the auth layer: the limits count principals, and a 429 releases a reserved use.
    let routes = match rate_limit {
        Some(rate_limit) => routes.layer(rate_limit),
        None => routes,
    };
    catch_panics(health.merge(routes.layer(auth)))
        .layer(middleware::from_fn_with_state(
            body_timeout,
            crate::deadline::body_deadline,
        ))
        .layer(middleware::from_fn(log))
}

async fn serve<S: Store + ChangeFeed + Send + Sync>(
    store: S,
    accounts: Arc<Accounts>,
    args: ServeArgs,
) -> Result<(), Box<dyn Error>> {
    let lifetime = crate::output::parse_duration(&args.session_lifetime)?;
    let limits = ConnectionLimits {
        header_timeout: positive(&args.header_timeout, "--header-timeout")?,
        idle_timeout: positive(&args.idle_timeout, "--idle-timeout")?,
        max_connections: args.max_connections.max(1),
    };
    let attempts = args.login_attempts;
    let throttle = LoginThrottle::new(LoginLimits {
        per_account_and_address: attempts,
        per_address: attempts.saturating_mul(NonZeroU32::new(6).unwrap_or(NonZeroU32::MIN)),
        per_account: attempts.saturating_mul(NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN)),
        window: positive(&args.login_window, "--login-window")?,
        ..LoginLimits::default()
    });
    let directory: Arc<dyn UserDirectory> = accounts.clone();
    let sessions = Sessions::new(directory, lifetime);
    let coalesce = crate::output::parse_duration(&args.audit_coalesce_requests)
        .map_err(|error| format!("--audit-coalesce-requests: {error}"))?;
    let audit_options = WriterOptions {
        coalesce_requests: (!coalesce.is_zero()).then_some(coalesce),
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(Arc::new(store.clone()), audit_options);
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
    let health = crate::health::router(crate::health::Readiness {
        database: Arc::new(store.clone()),
        redis: redis.clone(),
        cache,
    });
    let auth = AgentAuthLayer::from_arc(resolver)
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
    let approval_lifetime = positive(&args.approval_lifetime, "--approval-lifetime")?;
    if approval_lifetime > tower_agent_auth::approval::MAX_LIFETIME {
        return Err("--approval-lifetime: at most 1d".into());
    }
    let supervision = Supervision::new(store.clone(), critical)
        .lifetime(approval_lifetime)
        .notifier(LogNotifier)
        .audit(writer.clone());
    let routes = Router::new()
        .merge(
            Login::new(sessions, accounts.clone())
                .secure_cookies(args.secure_cookies)
                .throttle(throttle)
                .trusted_proxies(args.trusted_proxies.iter().copied())
                .audit(writer.clone())
                .router(),
        )
        .merge(home_router(manage.clone()))
        .merge(approvals_router(manage.clone()))
        .merge(tasks_router(manage.clone()))
        .merge(delegations_router(manage.clone()))
        .merge(manage_router(manage))
        .merge(demo(supervision));
    let body_timeout = positive(&args.body_timeout, "--body-timeout")?;
    let app = application(routes, rate_limit, auth, health, body_timeout);

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {}", args.listen, bind_error(&error)))?;
    let address = listener.local_addr()?;
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

/// A Redis connection that connects on first use and reconnects after a failure: a node starts
/// and answers (from the database) while Redis is down. Commands time out quickly, so a Redis
/// that hangs delays a request by at most that.
fn redis_connection(url: &str, prefix: &str) -> Result<redis::aio::ConnectionManager, String> {
    if prefix.is_empty() {
        return Err(
            "--redis-prefix: must not be empty (keys of other applications would mix)".into(),
        );
    }
    let client = redis::Client::open(url).map_err(|error| format!("--redis-url: {error}"))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|error| format!("--redis-url: {error}"))
}

/// The resolver the layer asks: the store behind a verdict cache that follows the store's
/// change feed (and keeps a second level in Redis when configured), or the store alone with
/// `--no-cache`.
fn resolver<S>(
    store: &S,
    args: &ServeArgs,
    redis: Option<&redis::aio::ConnectionManager>,
) -> Result<(Arc<dyn TokenResolver>, Option<VerdictCache>), String>
where
    S: Store + ChangeFeed + Send + Sync,
{
    if args.no_cache {
        tracing::info!("no verdict cache: every request is resolved at the database");
        return Ok((Arc::new(store.clone()), None));
    }
    let bound = positive(&args.cache_bound, "--cache-bound")?;
    if bound > MAX_CACHE_BOUND {
        return Err(format!(
            "--cache-bound: at most {}s (a change must reach every node soon)",
            MAX_CACHE_BOUND.as_secs()
        ));
    }
    if bound < MIN_CACHE_BOUND {
        return Err(format!(
            "--cache-bound: at least {}ms (the change log is read four times per bound)",
            MIN_CACHE_BOUND.as_millis()
        ));
    }
    let mut config = CacheConfig::new().bound(bound).follows_feed();
    let second_level = match (redis, &args.redis_secret) {
        (Some(redis), Some(secret)) => Some(
            RedisSecondLevel::new(redis.clone(), secret.as_bytes())
                .map_err(|error| format!("--redis-secret: {error}"))?
                .with_prefix(args.redis_prefix.clone()),
        ),
        (Some(_), None) => {
            tracing::info!("no --redis-secret: verdicts are not shared through Redis");
            None
        }
        (None, _) => None,
    };
    let shared = second_level.is_some();
    if let Some(second_level) = second_level {
        config = config.second_level(second_level);
    }
    let cache = VerdictCache::new(config);
    tokio::spawn(cache.follow(store.clone()));
    tokio::spawn(log_freshness(cache.clone(), bound));
    tracing::info!(?bound, second_level = shared, "verdict cache");
    let resolver = CachingResolver::new(store.clone(), cache.clone());
    Ok((Arc::new(resolver), Some(cache)))
}

/// The longest `--cache-bound`: past it, a revoked token would stay admitted too long to call
/// it revoked.
const MAX_CACHE_BOUND: Duration = Duration::from_secs(60);
/// The shortest `--cache-bound`: a quarter of it is how often each node reads the change log.
const MIN_CACHE_BOUND: Duration = Duration::from_millis(100);

/// Logs when the cache stops answering from memory (the change log cannot be read, or the
/// channel that brings its notices is down) and when it answers again: what `/readyz` shows,
/// in the log where an operator looks first.
async fn log_freshness(cache: VerdictCache, bound: Duration) {
    let mut fresh = true;
    let mut interval = tokio::time::interval(bound.min(Duration::from_secs(1)));
    // The first polls take a moment: not a failure to report.
    tokio::time::sleep(bound).await;
    loop {
        interval.tick().await;
        let status = cache.status();
        if status.fresh != fresh {
            fresh = status.fresh;
            if fresh {
                tracing::info!(epoch = status.applied_epoch, "verdict cache fresh again");
            } else {
                tracing::warn!(
                    channel_up = status.channel_up,
                    "verdict cache stale: the change log cannot be read or its channel is down; \
                     every request goes to the database"
                );
            }
        }
    }
}

/// The rate limits of the flags, counted in Redis when configured (exact across nodes), else
/// on this node; `None` when no flag sets one.
fn rate_limit(
    args: &ServeArgs,
    redis: Option<&redis::aio::ConnectionManager>,
) -> Result<Option<RateLimitLayer>, String> {
    for (flag, typed) in [
        (
            "--rate-limit-per-token-for",
            &args.rate_limits_per_token_for,
        ),
        (
            "--rate-limit-per-agent-for",
            &args.rate_limits_per_agent_for,
        ),
    ] {
        for (n, (agent_type, _)) in typed.iter().enumerate() {
            if typed[..n].iter().any(|(seen, _)| seen == agent_type) {
                return Err(format!("{flag}: {} given twice", agent_type.as_str()));
            }
        }
    }
    let mut limits = RateLimits::new();
    let mut any = false;
    if let Some(rate) = args.rate_limit_per_token {
        limits = limits.per_token(rate);
        any = true;
    }
    if let Some(rate) = args.rate_limit_per_agent {
        limits = limits.per_agent(rate);
        any = true;
    }
    for (agent_type, rate) in &args.rate_limits_per_token_for {
        limits = limits.per_token_for(*agent_type, *rate);
        any = true;
    }
    for (agent_type, rate) in &args.rate_limits_per_agent_for {
        limits = limits.per_agent_for(*agent_type, *rate);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    tracing::info!(?limits, shared = redis.is_some(), "rate limits");
    Ok(Some(match redis {
        Some(redis) => RateLimitLayer::new(
            limits,
            RedisCounter::new(redis.clone()).with_prefix(args.redis_prefix.clone()),
        ),
        None => RateLimitLayer::local(limits),
    }))
}

/// The demo: user `demo` (password printed on first run only) and agent `demo-bot`, and a fresh
/// one-hour token for it on every run.
async fn demo_seed<S: Store>(
    store: &S,
    accounts: &Accounts,
    address: SocketAddr,
) -> Result<(), Box<dyn Error>> {
    use tower_agent_auth::ceiling::Policy;
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

/// A duration flag that must not be zero.
fn positive(text: &str, flag: &str) -> Result<Duration, String> {
    let duration = crate::output::parse_duration(text).map_err(|e| format!("{flag}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{flag}: must be more than 0"));
    }
    Ok(duration)
}

/// Why `bind` failed, in a few words.
fn bind_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "address not available here".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// Whether an accept error is about one connection (it went away before it was accepted), not
/// the listener: the next accept may go on at once.
fn one_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::Interrupted
    )
}

/// Serves connections until SIGTERM or Ctrl-C, then lets the open ones finish (30 s at most).
///
/// Each connection: HTTP/1.1 with `limits.header_timeout` on every request head (hyper's own,
/// with tokio's timer), reads and writes that stall for `limits.idle_timeout` end it, and its
/// peer address reaches the handlers as `ConnectInfo`. At most `limits.max_connections` are
/// served at once: the loop does not accept more until one ends. An accept error that is the
/// listener's (out of file descriptors: EMFILE, ENFILE, ENOBUFS) is logged and the loop pauses
/// 100 ms instead of spinning; the server keeps serving the connections it has.
async fn accept_loop(listener: TcpListener, app: Router, limits: &ConnectionLimits) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut failing = false;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if one_connection(&error) => continue,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot accept connections; pausing 100 ms between tries");
                    }
                    failing = true;
                    drop(slot);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        if failing {
            tracing::info!("accepting connections again");
            failing = false;
        }
        let _ = stream.set_nodelay(true);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_read_timeout(Some(limits.idle_timeout));
        stream.set_write_timeout(Some(limits.idle_timeout));
        let io = TokioIo::new(Box::pin(stream));
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(request)
            });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        open = graceful.count(),
        "stopped accepting; finishing open connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open after 30 s; closing them");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payee_reads_as_it_is_and_is_refused_in_the_agents_terms() {
        assert_eq!(payee("  ACME\u{00a0}").unwrap(), "ACME", "trimmed");
        assert_eq!(payee("ACME Corp").unwrap(), "ACME Corp");
        let padded = format!("ACME{}x", " ".repeat(35));
        for bad in ["ACME\u{2800}", "AC\u{3000}ME", padded.as_str(), "", "  "] {
            let refused = payee(bad).unwrap_err();
            assert!(refused.starts_with("to: "), "{bad:?}: {refused}");
        }
        // 64 characters of 4 bytes each: too long for the message, said as a payee's limit.
        let wide = "\u{1F600}".repeat(64);
        let refused = payee(&wide).unwrap_err();
        assert!(refused.starts_with("to: 1-64 characters"), "{refused}");
        assert!(!refused.contains("binding message"), "{refused}");
    }

    #[test]
    fn the_log_notifier_quotes_the_binding_message() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let now = time::OffsetDateTime::now_utc();
        let approval = Approval {
            id: "apr_1".into(),
            binding: tower_agent_auth::approval::ApprovalBinding::from_stored("00"),
            agent_id: "agt_1".into(),
            owner: "alice".into(),
            token_id: "tok_1".into(),
            delegation_chain: Vec::new(),
            method: "POST".into(),
            path: "/demo/payments".into(),
            capability: "payments:send".into(),
            details: None,
            binding_message: "Pay 1 EUR to X approval=apr_2 owner=bob".into(),
            status: tower_agent_auth::approval::ApprovalStatus::Pending,
            created_at: now,
            expires_at: now,
            decided_by: None,
            decided_at: None,
            uses: None,
            uses_remaining: None,
            task_id: None,
            orchestrator: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(LogNotifier.notify(&approval)).unwrap();
        });
        let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains(r#"binding_message="Pay 1 EUR to X approval=apr_2 owner=bob""#),
            "{logged}"
        );
    }

    #[test]
    fn payments_stay_critical_whatever_else_is_named() {
        let default = critical_set(&[]).unwrap();
        assert!(default.matches("payments:send"));
        let more = critical_set(&["posts:publish".to_owned()]).unwrap();
        assert!(more.matches("payments:send"), "given values add to it");
        assert!(more.matches("posts:publish"));
        assert!(critical_set(&["not a capability".to_owned()]).is_err());
    }
}
