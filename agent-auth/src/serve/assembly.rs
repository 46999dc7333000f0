//! What `serve` is assembled from, beside the routers of the library: the verdict cache and
//! its freshness log, the rate limits, Redis, the request log, the approval notifier, and the
//! layers around the application.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_agent_auth::approval::{Approval, ApprovalNotifier};
use tower_agent_auth::cache::{
    CacheConfig, CachingResolver, ChangeFeed, RedisSecondLevel, VerdictCache,
};
use tower_agent_auth::error::{BoxError, InvalidReason};
use tower_agent_auth::limit::{RateLimitLayer, RateLimits, RedisCounter};
use tower_agent_auth::server::catch_panics;
use tower_agent_auth::store::{Backend, Store};
use tower_agent_auth::{AgentAuthLayer, TokenResolver};

use super::args::ServeArgs;

/// Tells the person through the server's log: the reference server has no mail or chat.
pub(super) struct LogNotifier;

#[tower_agent_auth::async_trait]
impl ApprovalNotifier for LogNotifier {
    async fn notify(&self, approval: &Approval) -> Result<(), BoxError> {
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
pub(super) async fn log(request: Request, next: Next) -> Response {
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
pub(super) fn application(
    routes: Router,
    rate_limit: Option<RateLimitLayer>,
    auth: AgentAuthLayer,
    health: Router,
    body_timeout: Duration,
    own: Option<(Router, AgentAuthLayer)>,
) -> Router {
    // Inside the auth layer: the limits count principals, and a 429 releases a reserved use.
    let limited = |routes: Router| match &rate_limit {
        Some(rate_limit) => routes.layer(rate_limit.clone()),
        None => routes,
    };
    let mut app = health.merge(limited(routes).layer(auth));
    // Routes with an authentication layer of their own (`/mcp`: its tokens, its metadata in
    // every challenge), beside the others rather than behind both.
    if let Some((routes, auth)) = own {
        app = app.merge(limited(routes).layer(auth));
    }
    catch_panics(app)
        .layer(middleware::from_fn_with_state(
            body_timeout,
            super::deadline::body_deadline,
        ))
        .layer(middleware::from_fn(log))
        // Every handler made into its route once, here, with the layers around it: a router
        // served as it is (not through `into_make_service`) would otherwise clone each boxed
        // handler and apply every layer to it again on each request.
        .with_state(())
}

/// A Redis connection that connects on first use and reconnects after a failure: a node starts
/// and answers (from the database) while Redis is down. Commands time out quickly, so a Redis
/// that hangs delays a request by at most that.
pub(super) fn redis_connection(
    url: &str,
    prefix: &str,
) -> Result<redis::aio::ConnectionManager, String> {
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
pub(super) fn resolver<B>(
    store: &Store<B>,
    args: &ServeArgs,
    redis: Option<&redis::aio::ConnectionManager>,
) -> Result<(Arc<dyn TokenResolver>, Option<VerdictCache>), String>
where
    B: Backend,
    Store<B>: ChangeFeed,
{
    if args.no_cache {
        tracing::info!("no verdict cache: every request is resolved at the database");
        return Ok((Arc::new(store.clone()), None));
    }
    let bound = args.cache_bound;
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
pub(super) async fn log_freshness(cache: VerdictCache, bound: Duration) {
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
pub(super) fn rate_limit(
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower_agent_auth::approval::{ApprovalBinding, ApprovalStatus};

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
            binding: ApprovalBinding::from_stored("00"),
            agent_id: "agt_1".into(),
            owner: "alice".into(),
            token_id: "tok_1".into(),
            delegation_chain: Vec::new(),
            method: "POST".into(),
            path: "/demo/payments".into(),
            capability: "payments:send".into(),
            details: None,
            binding_message: "Pay 1 EUR to X approval=apr_2 owner=bob".into(),
            status: ApprovalStatus::Pending,
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
}
