//! One migration suite for both SQL stores: `migration_suite!` writes the cases once, and
//! `store_sqlite.rs` and `store_postgres.rs` beside it run them with one line each, as
//! `conformance_suite!` does for the store's behaviour.
//!
//! An old database is built by hand the way an earlier build left it: the library's own
//! migration files up to a version, each recorded with its checksum, and rows written in that
//! version's shape. Then the store of this build opens it.
#![cfg(all(any(feature = "sqlite", feature = "postgres"), feature = "testing"))]

use sha2::{Digest, Sha256};

/// The library's migrations for `dir` (`sqlite` or `postgres`), in version order: each
/// version, read from its file name (`0001_….sql`), and its SQL.
pub fn migrations(dir: &str) -> Vec<(i64, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let name = file.file_name().unwrap().to_string_lossy();
            let version = name.split('_').next().unwrap().parse().unwrap();
            (version, std::fs::read_to_string(file).unwrap())
        })
        .collect()
}

/// The checksum the library records for a migration's SQL.
pub fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The library's migration table, as every build has created it.
pub const MIGRATION_TABLE: &str = "CREATE TABLE IF NOT EXISTS agent_auth_schema_migrations (\
    version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum TEXT NOT NULL, \
    applied_at BIGINT NOT NULL)";

/// The migration cases on one database:
///
/// - `empty`: an async fn giving a pool on an empty database and a future that removes it, or
///   `None` when the database is not available (the test then passes with a notice);
/// - `db`: the sqlx database, `store`: the store type, `dir`: the folder of its migrations;
/// - `columns` and `indexes`: queries naming the columns and the indexes of
///   `agent_auth_audit_events`, one per row, in a fixed order.
#[allow(unused_macros)]
macro_rules! migration_suite {
    (
        empty: $empty:ident,
        db: $db:ty,
        store: $store:ty,
        dir: $dir:literal,
        columns: $columns:literal,
        indexes: $indexes:literal $(,)?
    ) => {
        mod migrations {
            use super::*;

            use tower_agent_auth::audit::{
                AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditSink, Outcome,
            };
            use tower_agent_auth::error::StoreError;
            use tower_agent_auth::store::{AccessRole, NewAgent, NewToken};
            use tower_agent_auth::testing;
            use tower_agent_auth::token::{RawToken, TokenFormat};

            use $crate::migration_suite::{MIGRATION_TABLE, checksum, migrations};

            type Pool = sqlx::Pool<$db>;

            /// Applies the library's migrations `from..=to` by hand, recording each as the
            /// library does.
            async fn apply(pool: &Pool, from: i64, to: i64) {
                sqlx::raw_sql(MIGRATION_TABLE).execute(pool).await.unwrap();
                for (version, sql) in migrations($dir) {
                    if version < from || version > to {
                        continue;
                    }
                    sqlx::raw_sql(&sql).execute(pool).await.unwrap();
                    sqlx::query(
                        "INSERT INTO agent_auth_schema_migrations VALUES ($1, 'by hand', $2, 0)",
                    )
                    .bind(version)
                    .bind(checksum(&sql))
                    .execute(pool)
                    .await
                    .unwrap();
                }
            }

            /// The newest migration the database recorded.
            async fn version(pool: &Pool) -> i64 {
                sqlx::query_scalar("SELECT MAX(version) FROM agent_auth_schema_migrations")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }

            /// One agent and one token, `tok_1`, in the first schema's shape.
            async fn version_1_rows(pool: &Pool) -> RawToken {
                let token = TokenFormat::new("acme").unwrap().mint("legacy").unwrap();
                sqlx::query(
                    "INSERT INTO agent_auth_agents VALUES ('agt_1', 'legacy', 'alice', \
                     'autonomous', 'active', '{\"allow\":null,\"deny\":[]}', 0, NULL)",
                )
                .execute(pool)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, \
                     created_at) VALUES ('tok_1', 'agt_1', $1, 'acme_legacy_…', 'from v1', 0)",
                )
                .bind(token.hash().as_bytes().to_vec())
                .execute(pool)
                .await
                .unwrap();
                token
            }

            /// The names `query` lists, one per row.
            async fn names(pool: &Pool, query: &str) -> Vec<String> {
                sqlx::query_scalar(query).fetch_all(pool).await.unwrap()
            }

            /// A database created by the first schema version (agents and tokens only), with
            /// a token in it, is upgraded when this build opens it: the token keeps working,
            /// and its agent becomes an unrestricted top-level agent that can be granted, have
            /// children, rotate and be audited.
            #[tokio::test]
            async fn a_version_1_database_is_upgraded_and_its_tokens_keep_working() {
                let Some((pool, cleanup)) = $empty().await else { return };
                apply(&pool, 1, 1).await;
                let token = version_1_rows(&pool).await;
                let users = testing::users();
                let clock = testing::clock();
                let store = <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
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
                let event = AuditEvent::new(
                    testing::now_micros(&clock),
                    AuditAction::Request,
                    Outcome::Success,
                )
                .agent("agt_1");
                store.write_batch(&[event]).await.unwrap();
                assert_eq!(
                    store
                        .events(&AuditFilter::agent("agt_1"))
                        .await
                        .unwrap()
                        .len(),
                    1
                );
                assert_eq!(version(&pool).await, <$store>::SCHEMA_VERSION);
                cleanup.await;
            }

            /// A database at schema 5 (before delegation) upgrades in place: its agents and
            /// tokens keep working, read as direct tokens of no orchestrator, and can delegate.
            #[tokio::test]
            async fn a_version_5_database_upgrades_and_its_tokens_can_delegate() {
                use tower_agent_auth::delegation::Delegation;
                let Some((pool, cleanup)) = $empty().await else { return };
                apply(&pool, 1, 5).await;
                let token = TokenFormat::new("acme").unwrap().mint("legacy").unwrap();
                sqlx::query(
                    "INSERT INTO agent_auth_agents (id, slug, owner, agent_type, status, policy, \
                     created_at) VALUES ('agt_1', 'legacy', 'alice', 'autonomous', 'active', \
                     '{\"allow\":null,\"deny\":[]}', 0)",
                )
                .execute(&pool)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, \
                     created_at, max_operations, operations_remaining, task_id) \
                     VALUES ('tok_1', 'agt_1', $1, 'acme_legacy_…', 'from v5', 0, 3, 3, \
                     'old-task')",
                )
                .bind(token.hash().as_bytes().to_vec())
                .execute(&pool)
                .await
                .unwrap();
                let users = testing::users();
                let clock = testing::clock();
                let store = <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
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
                cleanup.await;
            }

            /// From the oldest schema: rows written in every old shape (agents and tokens at
            /// schema 1, audit events with `identity`, `parent_identity` and `credential` at
            /// schemas 3 and 11) are all there after the upgrade, under the new names, and the
            /// store resolves and lists them. The upgraded schema is the one a new database
            /// gets.
            #[tokio::test]
            async fn the_oldest_database_keeps_its_audit_trail_under_the_new_names() {
                let Some((pool, cleanup)) = $empty().await else { return };
                apply(&pool, 1, 1).await;
                let token = version_1_rows(&pool).await;
                apply(&pool, 2, 3).await;
                sqlx::raw_sql(
                    "INSERT INTO agent_auth_audit_events (at, identity, parent_identity, \
                     credential, actor, delegation_chain, action, outcome, reason, method, path, \
                     status, task_id, detail) VALUES \
                     (1000000, 'agt_1', NULL, 'tok_1', 'alice', '[]', 'token_issued', 'success', \
                      NULL, NULL, NULL, NULL, NULL, NULL), \
                     (2000000, 'agt_2', 'agt_1', 'tok_2', NULL, '[]', 'request', 'success', \
                      NULL, 'GET', '/v1/posts', 200, 'task-1', NULL)",
                )
                .execute(&pool)
                .await
                .unwrap();
                // Migration 12 renamed the audit columns: the rows before it are in the old shape.
                let renamed = 12;
                apply(&pool, 4, renamed - 1).await;
                sqlx::raw_sql(
                    "INSERT INTO agent_auth_audit_events (at, identity, parent_identity, \
                     credential, actor, delegation_chain, action, outcome, reason, method, path, \
                     status, task_id, detail, occurrences) VALUES \
                     (3000000, 'agt_1', NULL, 'tok_1', NULL, '[]', 'token_refused', 'refused', \
                      'revoked', 'GET', '/v1/posts', 401, NULL, 'coalesced', 3)",
                )
                .execute(&pool)
                .await
                .unwrap();

                let users = testing::users();
                let clock = testing::clock();
                let store = <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
                    .await
                    .unwrap();
                assert_eq!(version(&pool).await, <$store>::SCHEMA_VERSION);

                // The rows, under the new names; the old names are gone.
                let stored: Vec<(Option<String>, Option<String>, Option<String>)> =
                    sqlx::query_as(
                        "SELECT agent_id, parent_agent_id, token_id \
                         FROM agent_auth_audit_events ORDER BY seq",
                    )
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                let some = |s: &str| Some(s.to_owned());
                assert_eq!(
                    stored,
                    [
                        (some("agt_1"), None, some("tok_1")),
                        (some("agt_2"), some("agt_1"), some("tok_2")),
                        (some("agt_1"), None, some("tok_1")),
                    ]
                );
                for old in ["identity", "parent_identity", "credential"] {
                    let select = format!("SELECT {old} FROM agent_auth_audit_events");
                    assert!(sqlx::query(&select).fetch_all(&pool).await.is_err(), "{old}");
                }

                // The schema is the one a new database gets: same columns, same indexes.
                let Some((fresh_pool, fresh_cleanup)) = $empty().await else { return };
                let fresh = <$store>::from_pool(
                    fresh_pool.clone(),
                    testing::config(&users, &clock),
                )
                .await
                .unwrap();
                assert_eq!(
                    names(&pool, $columns).await,
                    names(&fresh_pool, $columns).await
                );
                let indexes = names(&pool, $indexes).await;
                assert_eq!(indexes, names(&fresh_pool, $indexes).await);
                for index in [
                    "agent_auth_audit_by_agent",
                    "agent_auth_audit_by_parent",
                    "agent_auth_audit_by_token",
                ] {
                    assert!(indexes.iter().any(|i| i == index), "{index} in {indexes:?}");
                }
                assert!(
                    !indexes
                        .iter()
                        .any(|i| i.contains("identity") || i.contains("credential")),
                    "{indexes:?}"
                );
                drop(fresh);
                fresh_cleanup.await;

                // The store works on it: the token resolves, the trail is listed by agent (its
                // children's events included), by token and by time.
                let principal = testing::resolve(&store, token.expose_secret())
                    .await
                    .unwrap();
                assert_eq!(principal.token_id().map(|t| t.as_str()), Some("tok_1"));
                let events = store.events(&AuditFilter::agent("agt_1")).await.unwrap();
                let seen: Vec<_> = events
                    .iter()
                    .map(|e| {
                        (
                            e.agent.as_ref().map(|a| a.as_str()),
                            e.parent.as_ref().map(|a| a.as_str()),
                            e.token.as_ref().map(|t| t.as_str()),
                            e.occurrences,
                        )
                    })
                    .collect();
                assert_eq!(
                    seen,
                    [
                        (Some("agt_1"), None, Some("tok_1"), 1),
                        (Some("agt_2"), Some("agt_1"), Some("tok_2"), 1),
                        (Some("agt_1"), None, Some("tok_1"), 3),
                    ]
                );
                assert_eq!(events[0].action, AuditAction::TokenIssued);
                assert_eq!(events[0].actor.as_ref().map(|u| u.as_str()), Some("alice"));
                assert_eq!(events[1].task_id.as_deref(), Some("task-1"));
                assert_eq!(events[1].request.as_ref().map(|r| r.status), Some(200));
                assert_eq!(events[2].detail.as_deref(), Some("coalesced"));
                let own = store
                    .events(&AuditFilter::agent("agt_1").without_children())
                    .await
                    .unwrap();
                assert_eq!(own.len(), 2);
                let of_token = store.events(&AuditFilter::token("tok_2")).await.unwrap();
                assert_eq!(of_token.len(), 1);
                assert_eq!(of_token[0].agent.as_ref().map(|a| a.as_str()), Some("agt_2"));
                let later = AuditFilter::agent("agt_1")
                    .since(time::OffsetDateTime::from_unix_timestamp(2).unwrap());
                assert_eq!(store.events(&later).await.unwrap().len(), 2);
                let newest = store
                    .events(&AuditFilter::agent("agt_1").last(1))
                    .await
                    .unwrap();
                assert_eq!(newest.len(), 1);
                assert_eq!(newest[0].occurrences, 3);

                // And new events are written beside the old ones.
                let event = AuditEvent::new(
                    testing::now_micros(&clock),
                    AuditAction::Request,
                    Outcome::Success,
                )
                .agent("agt_2")
                .parent(Some("agt_1".into()))
                .token("tok_2");
                store.write_batch(&[event]).await.unwrap();
                let of_token = store.events(&AuditFilter::token("tok_2")).await.unwrap();
                assert_eq!(of_token.len(), 2);
                assert_eq!(
                    store
                        .events(&AuditFilter::agent("agt_1"))
                        .await
                        .unwrap()
                        .len(),
                    4
                );
                cleanup.await;
            }

            /// Opening a migrated database again, or migrating it again, applies nothing twice;
            /// migrations are recorded at the time of the store's clock.
            #[tokio::test]
            async fn migrating_again_applies_nothing_twice() {
                let Some((pool, cleanup)) = $empty().await else { return };
                assert_eq!(<$store>::schema_version(&pool).await.unwrap(), None);
                let users = testing::users();
                let clock = testing::clock();
                let opened = testing::now_micros(&clock).unix_timestamp_nanos() / 1_000;
                let store = <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
                    .await
                    .unwrap();
                assert_eq!(
                    <$store>::schema_version(&pool).await.unwrap(),
                    Some(<$store>::SCHEMA_VERSION)
                );
                clock.advance(std::time::Duration::from_secs(60));
                store.migrate().await.unwrap();
                let again = <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
                    .await
                    .unwrap();
                again.migrate().await.unwrap();
                let recorded: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT version, applied_at FROM agent_auth_schema_migrations \
                     ORDER BY version",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                // Every version of the files, once (versions may skip a number).
                let expected: Vec<(i64, i64)> = migrations($dir)
                    .into_iter()
                    .map(|(version, _)| (version, i64::try_from(opened).unwrap()))
                    .collect();
                assert_eq!(expected.last().unwrap().0, <$store>::SCHEMA_VERSION);
                assert_eq!(recorded, expected);
                cleanup.await;
            }

            /// A database whose applied migration was edited afterwards is refused.
            #[tokio::test]
            async fn an_edited_migration_is_refused() {
                let Some((pool, cleanup)) = $empty().await else { return };
                let users = testing::users();
                let clock = testing::clock();
                <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
                    .await
                    .unwrap();
                sqlx::query(
                    "UPDATE agent_auth_schema_migrations SET checksum = 'tampered' \
                     WHERE version = 1",
                )
                .execute(&pool)
                .await
                .unwrap();
                let reopened =
                    <$store>::from_pool(pool.clone(), testing::config(&users, &clock)).await;
                match reopened {
                    Err(StoreError::Unavailable(message)) => assert!(
                        message
                            .to_string()
                            .contains("migration 1 was changed after it was applied"),
                        "{message}"
                    ),
                    other => panic!("{other:?}"),
                }
                cleanup.await;
            }

            /// A database migrated by a newer build is refused, not used half understood.
            #[tokio::test]
            async fn a_newer_database_is_refused() {
                let Some((pool, cleanup)) = $empty().await else { return };
                let users = testing::users();
                let clock = testing::clock();
                <$store>::from_pool(pool.clone(), testing::config(&users, &clock))
                    .await
                    .unwrap();
                let newer = <$store>::SCHEMA_VERSION + 1;
                sqlx::query(
                    "INSERT INTO agent_auth_schema_migrations VALUES ($1, 'from a newer build', \
                     'unknown', 0)",
                )
                .bind(newer)
                .execute(&pool)
                .await
                .unwrap();
                let reopened =
                    <$store>::from_pool(pool.clone(), testing::config(&users, &clock)).await;
                match reopened {
                    Err(StoreError::Unavailable(message)) => assert!(
                        message
                            .to_string()
                            .contains(&format!("migration {newer}) is newer than this build")),
                        "{message}"
                    ),
                    other => panic!("{other:?}"),
                }
                cleanup.await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use migration_suite;
