//! The conformance suite on PostgreSQL: a fresh schema per test on the server named by
//! `AGENT_AUTH_TEST_POSTGRES_URL`. Without it the tests print a notice and pass, unless
//! `AGENT_AUTH_REQUIRE_SERVICES` is set (CI), which makes a missing server a failure.
#![cfg(all(feature = "postgres", feature = "testing"))]

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::error::StoreError;
use tower_agent_auth::store::{MemoryUserDirectory, PgStore};
use tower_agent_auth::testing;

pub(crate) fn server_url() -> Option<String> {
    match std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if crate::common::services_required() => {
            panic!("AGENT_AUTH_TEST_POSTGRES_URL is not set but AGENT_AUTH_REQUIRE_SERVICES is")
        }
        _ => {
            crate::common::skip_notice("PostgreSQL", "AGENT_AUTH_TEST_POSTGRES_URL");
            None
        }
    }
}

/// A pool whose connections all use a fresh schema, and a future that drops it.
pub(crate) async fn fresh_schema(
    url: &str,
) -> (sqlx::PgPool, impl std::future::Future<Output = ()> + use<>) {
    let schema = format!(
        "agent_auth_test_{}",
        std::process::id() as u64 * 1_000_000 + rand_suffix()
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let options: PgConnectOptions = url.parse().unwrap();
    let options = options.options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .unwrap();
    let cleanup = async move {
        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await;
    };
    (pool, cleanup)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (u64::from(nanos) % 1000) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

pub async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(PgStore, impl std::future::Future<Output = ()>)> {
    let url = server_url()?;
    let (pool, cleanup) = fresh_schema(&url).await;
    let store = PgStore::from_pool(pool, testing::config(&users, &clock))
        .await
        .unwrap();
    Some((store, cleanup))
}

tower_agent_auth::conformance_suite!(open);
// The sections that need more than `Store`: named, since a store of another crate may
// not implement `ApprovalGate` or `DelegationStore`.
tower_agent_auth::conformance_suite!(open, [approval, delegation]);
// OAuth clients, codes, refresh families and connections (feature `oauth`).
#[cfg(feature = "oauth")]
tower_agent_auth::conformance_suite!(open, [oauth]);
// The callback receiver's records (feature `callback`).
#[cfg(feature = "callback")]
tower_agent_auth::conformance_suite!(open, [callback]);

/// An empty database: a fresh schema.
async fn empty_database() -> Option<(sqlx::PgPool, impl std::future::Future<Output = ()>)> {
    let url = server_url()?;
    Some(fresh_schema(&url).await)
}

crate::migration_suite::migration_suite!(
    empty: empty_database,
    db: sqlx::Postgres,
    store: PgStore,
    dir: "postgres",
    columns: "SELECT column_name::text FROM information_schema.columns \
              WHERE table_schema = current_schema() AND table_name = 'agent_auth_audit_events' \
              ORDER BY ordinal_position",
    indexes: "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
              AND tablename = 'agent_auth_audit_events' ORDER BY indexname",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn use_limit_is_exact_across_two_nodes() {
    let Some(url) = server_url() else { return };
    let users = testing::users();
    let clock = testing::clock();
    let (pool, cleanup) = fresh_schema(&url).await;
    let node_a = PgStore::from_pool(pool.clone(), testing::config(&users, &clock))
        .await
        .unwrap();
    // A second node: its own pool on the same schema.
    let options: PgConnectOptions = url.parse().unwrap();
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let other_pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    let node_b = PgStore::from_pool(other_pool, testing::config(&users, &clock))
        .await
        .unwrap();
    testing::concurrent_use_limit(vec![node_a, node_b], &users).await;
    cleanup.await;
}

/// A parent limited to 50 and two children, 200 requests over two nodes: exactly 50 admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uses_shared_down_a_chain_are_exact_across_two_nodes() {
    let Some(url) = server_url() else { return };
    let users = testing::users();
    let clock = testing::clock();
    let (pool, cleanup) = fresh_schema(&url).await;
    let node_a = PgStore::from_pool(pool.clone(), testing::config(&users, &clock))
        .await
        .unwrap();
    // A second node: its own pool on the same schema.
    let options: PgConnectOptions = url.parse().unwrap();
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let other_pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    let node_b = PgStore::from_pool(other_pool, testing::config(&users, &clock))
        .await
        .unwrap();
    testing::concurrent_delegated_use_limit(vec![node_a, node_b], 50).await;
    cleanup.await;
}

#[tokio::test]
async fn a_closed_port_answers_503_never_admission() {
    // No server needed: nothing listens on port 1.
    let users = testing::users();
    let clock = testing::clock();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let store = PgStore::from_pool(pool, testing::config(&users, &clock).run_migrations(false))
        .await
        .unwrap();
    let token = tower_agent_auth::token::TokenFormat::new("acme")
        .unwrap()
        .mint("writer")
        .unwrap();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store))
        .service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        })
        .oneshot(
            Request::builder()
                .header("authorization", format!("Bearer {}", token.expose_secret()))
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_typed_error() {
    let users = testing::users();
    let clock = testing::clock();
    let result = PgStore::connect(
        "postgres://postgres@127.0.0.1:1/test",
        testing::config(&users, &clock),
    )
    .await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
}

/// An unreachable database is named — host, port, database, user, and why — never with its
/// password, instead of "pool timed out".
#[tokio::test]
async fn an_unreachable_database_names_where_and_why() {
    let result = PgStore::connect_pool("postgres://scott:s3cret@127.0.0.1:1/payroll").await;
    let message = result.unwrap_err().to_string();
    for expected in ["127.0.0.1:1", "\"payroll\"", "\"scott\"", "refused"] {
        assert!(
            message.contains(expected),
            "{expected} missing from {message}"
        );
    }
    assert!(!message.contains("s3cret"), "{message}");
    assert!(!message.contains("timed out"), "{message}");
}

/// A locked table (a migration, a stuck transaction) makes requests 503 within the statement
/// timeout instead of holding them until the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_answers_503_within_the_statement_timeout() {
    use tower_agent_auth::store::{NewAgent, NewToken, PoolSettings};
    let Some(url) = server_url() else { return };
    let (pool, cleanup) = fresh_schema(&url).await;
    let users = testing::users();
    let clock = testing::clock();
    let store = PgStore::from_pool(pool.clone(), testing::config(&users, &clock))
        .await
        .unwrap();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let issued = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let timed_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let settings = PoolSettings::default().statement_timeout(Duration::from_secs(1));
    let timed_pool = PgStore::connect_pool_with(&timed_url, settings)
        .await
        .unwrap();
    let timed = PgStore::from_pool(
        timed_pool,
        testing::config(&users, &clock).run_migrations(false),
    )
    .await
    .unwrap();

    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE agent_auth_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(timed))
        .service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        })
        .oneshot(
            Request::builder()
                .header(
                    "authorization",
                    format!("Bearer {}", issued.token.expose_secret()),
                )
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let waited = started.elapsed();
    locker.rollback().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    cleanup.await;
}
