//! The conformance suite on SQLite (a temporary file per test), and what only a file can show.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::error::StoreError;
use tower_agent_auth::store::{MemoryUserDirectory, NewAgent, NewToken, SqliteStore};
use tower_agent_auth::testing;

pub async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(SqliteStore, impl std::future::Future<Output = ()>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db");
    let store = SqliteStore::open(&path.display().to_string(), testing::config(&users, &clock))
        .await
        .unwrap();
    Some((store, async move { drop(dir) }))
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

/// An empty database: a temporary file.
async fn empty_database() -> Option<(sqlx::SqlitePool, impl std::future::Future<Output = ()>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db").display().to_string();
    let pool = SqliteStore::connect_pool(&path).await.unwrap();
    Some((pool, async move { drop(dir) }))
}

crate::migration_suite::migration_suite!(
    empty: empty_database,
    db: sqlx::Sqlite,
    store: SqliteStore,
    dir: "sqlite",
    columns: "SELECT name FROM pragma_table_info('agent_auth_audit_events') ORDER BY cid",
    indexes: "SELECT name FROM sqlite_master WHERE type = 'index' \
              AND tbl_name = 'agent_auth_audit_events' ORDER BY name",
);

#[tokio::test]
async fn tokens_survive_a_restart_and_revocations_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db").display().to_string();
    let users = testing::users();
    let clock = testing::clock();
    let (kept, revoked) = {
        let store = SqliteStore::open(&path, testing::config(&users, &clock))
            .await
            .unwrap();
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let kept = store
            .create_token(&agent.id, NewToken::new("kept"))
            .await
            .unwrap();
        let revoked = store
            .create_token(&agent.id, NewToken::new("revoked"))
            .await
            .unwrap();
        store
            .revoke_token(&agent.id, &revoked.info.id)
            .await
            .unwrap();
        store.pool().close().await;
        (kept, revoked)
    };
    let reopened = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    let principal = testing::resolve(&reopened, kept.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.token_id(), Some(&kept.info.id));
    assert!(
        testing::resolve(&reopened, revoked.token.expose_secret())
            .await
            .is_err()
    );
    // Reopening applied no migration twice.
    let (rows, versions): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT version) FROM agent_auth_schema_migrations",
    )
    .fetch_one(reopened.pool())
    .await
    .unwrap();
    assert_eq!(
        (rows, versions),
        (SqliteStore::SCHEMA_VERSION, SqliteStore::SCHEMA_VERSION)
    );
}

#[tokio::test]
async fn last_used_is_written_off_the_request_path_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db").display().to_string();
    let users = testing::users();
    let clock = testing::clock();
    let config =
        testing::config(&users, &clock).last_used_interval(std::time::Duration::from_secs(3600));
    let store = SqliteStore::open(&path, config).await.unwrap();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    for _ in 0..50 {
        testing::resolve(&store, t.token.expose_secret())
            .await
            .unwrap();
    }
    // Nothing written yet: the requests only buffered their time.
    assert_eq!(store.last_used_writes(), 0);
    assert_eq!(
        store
            .token(&agent.id, &t.info.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        None
    );
    store.flush_last_used().await.unwrap();
    assert_eq!(store.last_used_writes(), 1, "fifty uses, one write");
    let info = store.token(&agent.id, &t.info.id).await.unwrap().unwrap();
    assert_eq!(info.last_used_at, Some(testing::now_micros(&clock)));
}

#[tokio::test]
async fn an_unreachable_database_file_is_a_typed_error() {
    let users = testing::users();
    let clock = testing::clock();
    let result = SqliteStore::open(
        "/nonexistent/dir/agent-auth.db",
        testing::config(&users, &clock),
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_database_gone_at_request_time_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db").display().to_string();
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    store.pool().close().await;
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store))
        .service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        })
        .oneshot(
            Request::builder()
                .header(
                    "authorization",
                    format!("Bearer {}", t.token.expose_secret()),
                )
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A child stored before children inherited supervision (an `ephemeral` row under a
/// supervised parent) still resolves to a supervised principal: the pipeline asks the parent.
#[tokio::test]
async fn a_legacy_unsupervised_child_of_a_supervised_agent_resolves_supervised() {
    use tower_agent_auth::store::AgentType;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db").display().to_string();
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    let payer = store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let child = store
        .create_agent(NewAgent::child("payer-t1", payer.id.clone()))
        .await
        .unwrap();
    sqlx::query("UPDATE agent_auth_agents SET agent_type = 'ephemeral' WHERE id = ?")
        .bind(child.id.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    let stored = store.agent(&child.id).await.unwrap().unwrap();
    assert_eq!(stored.agent_type, AgentType::Ephemeral, "the legacy row");
    let token = store
        .create_token(&child.id, NewToken::new("t"))
        .await
        .unwrap();
    let principal = testing::resolve(&store, token.token.expose_secret())
        .await
        .unwrap();
    assert!(principal.is_supervised(), "its parent is supervised");
    assert_eq!(
        principal.agent_ref().unwrap().agent_type(),
        AgentType::Supervised
    );
}
