//! `GET /healthz` (the process answers) and `GET /readyz` (it can decide: the database, and
//! Redis when configured, answer). The verdict cache's state is shown, not required: a stale
//! cache sends requests to the database, which still decides them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_agent_auth::cache::{ChangeFeed, VerdictCache};

/// How long a readiness check waits for the database or Redis.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the database's and Redis's answers are reused: `/readyz` needs no credential, so a
/// flood of it must not become a flood of queries.
const CHECK_REUSED_FOR: Duration = Duration::from_secs(1);

/// What `/readyz` checks.
pub struct Readiness {
    pub database: Arc<dyn ChangeFeed>,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub cache: Option<VerdictCache>,
}

/// What the last check of the database and Redis found, and when it began.
type Checked = (Instant, &'static str, Option<&'static str>);

/// The two routes; outside the auth layer, so a load balancer needs no credential.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Arc::new((readiness, tokio::sync::Mutex::new(None))))
}

/// `ok`, or `unreachable` with the error logged (its text may name hosts; the answer is
/// public).
fn verdict<E: std::fmt::Display>(
    what: &str,
    outcome: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> &'static str {
    match outcome {
        Ok(Ok(())) => "ok",
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: {what} unreachable");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness: {what} did not answer within {CHECK_TIMEOUT:?}");
            "unreachable"
        }
    }
}

async fn ready(
    State(state): State<Arc<(Readiness, tokio::sync::Mutex<Option<Checked>>)>>,
) -> (StatusCode, Json<Value>) {
    let (readiness, last) = &*state;
    // One check at a time; those waiting meanwhile take its answer.
    let mut last = last.lock().await;
    let (database, redis) = match *last {
        Some((at, database, redis)) if at.elapsed() < CHECK_REUSED_FOR => (database, redis),
        _ => {
            let started = Instant::now();
            let (database, redis) = check(readiness).await;
            *last = Some((started, database, redis));
            (database, redis)
        }
    };
    drop(last);
    let cache = readiness.cache.as_ref().map(|cache| {
        let status = cache.status();
        json!({
            "fresh": status.fresh,
            "channel_up": status.channel_up,
            "applied_epoch": status.applied_epoch,
            "hits": status.hits,
            "misses": status.misses,
        })
    });
    let ready = database == "ok" && redis.is_none_or(|redis| redis == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "ready": ready, "database": database, "cache": cache });
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    (status, Json(body))
}

/// The database's and Redis's answers (Redis `None` when not configured).
async fn check(readiness: &Readiness) -> (&'static str, Option<&'static str>) {
    // The change log's head: one indexed read, and the query the cache itself depends on.
    let database =
        tokio::time::timeout(CHECK_TIMEOUT, readiness.database.changes_since(u64::MAX, 0))
            .await
            .map(|answer| answer.map(drop));
    let database = verdict("the database", database);
    let redis = match &readiness.redis {
        None => None,
        Some(connection) => {
            let mut connection = connection.clone();
            let ping = tokio::time::timeout(
                CHECK_TIMEOUT,
                redis::cmd("PING").query_async::<String>(&mut connection),
            )
            .await
            .map(|answer| answer.map(drop));
            Some(verdict("Redis", ping))
        }
    };
    (database, redis)
}
