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

async fn open(
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

/// A database created by the first schema version (agents and tokens only), with a token in it,
/// is upgraded when this build opens it: the token keeps working and the new tables are there.
#[tokio::test]
async fn a_version_1_database_is_upgraded_and_its_tokens_keep_working() {
    use sha2::{Digest, Sha256};
    use tower_agent_auth::store::AccessRole;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db").display().to_string();
    let v1 = include_str!("../migrations/sqlite/0001_agents_and_tokens.sql");
    let token = tower_agent_auth::token::TokenFormat::new("acme")
        .unwrap()
        .mint("legacy")
        .unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(v1).execute(&pool).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE agent_auth_schema_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO agent_auth_schema_migrations VALUES (1, 'agents and tokens', ?, 0)",
        )
        .bind(hex::encode(Sha256::digest(v1.as_bytes())))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO agent_auth_agents VALUES ('agt_1', 'legacy', 'alice', 'autonomous', \
             'active', '{\"allow\":null,\"deny\":[]}', 0, NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, created_at) \
             VALUES ('tok_1', 'agt_1', ?, 'acme_legacy_…', 'from v1', 0)",
        )
        .bind(token.hash().as_bytes().to_vec())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    let principal = testing::resolve(&store, token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.token_id().map(|t| t.as_str()), Some("tok_1"));
    store
        .grant(&"agt_1".into(), &"bob".into(), AccessRole::Operator)
        .await
        .unwrap();
    // The v1 agent became an unrestricted top-level identity that can have children, rotate,
    // and be audited.
    let upgraded = store.agent(&"agt_1".into()).await.unwrap().unwrap();
    assert_eq!(
        (upgraded.parent, upgraded.scopes, upgraded.modes),
        (None, None, None)
    );
    let child = store
        .create_agent(NewAgent::child("legacy-thread-1", "agt_1"))
        .await
        .unwrap();
    let issued = store
        .create_token(&child.id, NewToken::new("thread"))
        .await
        .unwrap();
    assert!(
        testing::resolve(&store, issued.token.expose_secret())
            .await
            .is_ok()
    );
    store
        .rotate_token(&"agt_1".into(), &"tok_1".into(), std::time::Duration::ZERO)
        .await
        .unwrap();
    let rotated = store.agent(&"agt_1".into()).await.unwrap().unwrap();
    assert!(rotated.last_rotated_at.is_some());
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM agent_auth_schema_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, SqliteStore::SCHEMA_VERSION);
}

/// A database at schema 5 (before delegation) upgrades in place: its agents and tokens keep
/// working, read as direct tokens of no orchestrator, and can delegate.
#[tokio::test]
async fn a_version_5_database_upgrades_and_its_tokens_can_delegate() {
    use sha2::{Digest, Sha256};
    use tower_agent_auth::delegation::Delegation;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db").display().to_string();
    let migrations = [
        (
            1,
            "agents and tokens",
            include_str!("../migrations/sqlite/0001_agents_and_tokens.sql"),
        ),
        (
            2,
            "access grants",
            include_str!("../migrations/sqlite/0002_access_grants.sql"),
        ),
        (
            3,
            "identities and audit",
            include_str!("../migrations/sqlite/0003_identities_and_audit.sql"),
        ),
        (
            4,
            "uses in flight",
            include_str!("../migrations/sqlite/0004_uses_in_flight.sql"),
        ),
        (
            5,
            "coalesced refusals, the trail indexed by time",
            include_str!("../migrations/sqlite/0005_coalesced_refusals.sql"),
        ),
    ];
    let token = tower_agent_auth::token::TokenFormat::new("acme")
        .unwrap()
        .mint("legacy")
        .unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE agent_auth_schema_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (version, description, sql) in migrations {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO agent_auth_schema_migrations VALUES (?, ?, ?, 0)")
                .bind(version)
                .bind(description)
                .bind(hex::encode(Sha256::digest(sql.as_bytes())))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO agent_auth_agents (id, slug, owner, agent_type, status, policy, \
             created_at) VALUES ('agt_1', 'legacy', 'alice', 'autonomous', 'active', \
             '{\"allow\":null,\"deny\":[]}', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, created_at, \
             max_operations, operations_remaining, task_id) \
             VALUES ('tok_1', 'agt_1', ?, 'acme_legacy_…', 'from v5', 0, 3, 3, 'old-task')",
        )
        .bind(token.hash().as_bytes().to_vec())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    let agent = store.agent(&"agt_1".into()).await.unwrap().unwrap();
    assert!(!agent.is_orchestrator);
    let kept = store
        .token(&"agt_1".into(), &"tok_1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            kept.delegation_parent,
            kept.delegation_depth,
            kept.task_id.as_deref()
        ),
        (None, 0, Some("old-task"))
    );
    let child = store
        .delegate(
            token.expose_secret(),
            Delegation::to("agt_1", "child").max_operations(2),
        )
        .await
        .unwrap();
    let principal = testing::resolve(&store, child.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.delegation_depth(), 1);
    assert_eq!(principal.task_id(), Some("old-task"));
    let left = store
        .token(&"agt_1".into(), &"tok_1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        left.operations_remaining,
        Some(2),
        "the child's use was the parent's too"
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.db").display().to_string();
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::open(&path, testing::config(&users, &clock))
        .await
        .unwrap();
    sqlx::query("UPDATE agent_auth_schema_migrations SET checksum = 'tampered' WHERE version = 1")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    let reopened = SqliteStore::open(&path, testing::config(&users, &clock)).await;
    assert!(
        matches!(reopened, Err(StoreError::Unavailable(_))),
        "{reopened:?}"
    );
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
