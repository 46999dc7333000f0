//! The SQL stores' change feed: every narrowing change, whoever makes it, advances the epoch by
//! one per changed row and is logged; the request path logs nothing. Each case runs on SQLite
//! (a temporary file) and on PostgreSQL (a fresh schema on the server named by
//! `AGENT_AUTH_TEST_POSTGRES_URL`, skipped without it unless `AGENT_AUTH_REQUIRE_SERVICES` is
//! set); PostgreSQL's notices have cases of their own at the end.
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "testing"))]

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower_agent_auth::TokenResolver;
use tower_agent_auth::cache::{Change, ChangeFeed, Changes, Notice};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::delegation::Delegation;
use tower_agent_auth::error::StoreError;
use tower_agent_auth::principal::UserId;
use tower_agent_auth::resolver::TokenLookup;
use tower_agent_auth::store::{
    AgentStatus, Backend, IssuedToken, NewAgent, NewToken, PgStore, SqliteStore, Store,
};
use tower_agent_auth::testing;

/// What a case needs of a store beyond the library's traits.
trait FeedStore: TokenResolver + ChangeFeed + Clone + 'static {
    async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError>;
    async fn flush_last_used(&self) -> Result<(), StoreError>;
    /// Runs `sql` on the store's database as another writer would (manual SQL).
    async fn exec(&self, sql: &str);
}

impl FeedStore for SqliteStore {
    async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError> {
        SqliteStore::user_changed(self, user).await
    }
    async fn flush_last_used(&self) -> Result<(), StoreError> {
        SqliteStore::flush_last_used(self).await
    }
    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.pool()).await.unwrap();
    }
}

impl FeedStore for PgStore {
    async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError> {
        PgStore::user_changed(self, user).await
    }
    async fn flush_last_used(&self) -> Result<(), StoreError> {
        PgStore::flush_last_used(self).await
    }
    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.pool()).await.unwrap();
    }
}

fn postgres_url() -> Option<String> {
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

/// A fresh schema: its name, a pool whose connections use it, and the admin pool (default
/// search path) that drops it.
async fn fresh_schema(url: &str) -> (String, sqlx::PgPool, sqlx::PgPool) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "agent_auth_feed_{}_{}_{}",
        std::process::id(),
        nanos % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    (schema.clone(), schema_pool(url, &schema).await, admin)
}

async fn schema_pool(url: &str, schema: &str) -> sqlx::PgPool {
    let options: PgConnectOptions = url.parse().unwrap();
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap()
}

async fn drop_schema(admin: &sqlx::PgPool, schema: &str) {
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(admin)
        .await;
}

/// Runs `case` on a fresh SQLite file and, when the server is configured, a fresh PostgreSQL
/// schema.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("feed.db").display().to_string();
                    let users = tower_agent_auth::testing::users();
                    let clock = tower_agent_auth::testing::clock();
                    let store = tower_agent_auth::store::SqliteStore::open(
                        &path,
                        tower_agent_auth::testing::config(&users, &clock),
                    )
                    .await
                    .unwrap();
                    super::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = super::postgres_url() else { return };
                    let (schema, pool, admin) = super::fresh_schema(&url).await;
                    let users = tower_agent_auth::testing::users();
                    let clock = tower_agent_auth::testing::clock();
                    let store = tower_agent_auth::store::PgStore::from_pool(
                        pool,
                        tower_agent_auth::testing::config(&users, &clock),
                    )
                    .await
                    .unwrap();
                    super::$case(store).await;
                    super::drop_schema(&admin, &schema).await;
                }
            )*
        }
    };
}

on_both!(
    revoking_a_token_logs_it,
    revoking_all_tokens_of_an_agent_logs_each,
    spending_the_last_use_of_a_completing_token_logs_it,
    rotating_a_token_logs_the_old_one,
    deleting_a_token_by_hand_logs_it,
    purging_logs_every_token_deleted_with_its_delegated_ones,
    revoking_a_tree_logs_every_token_of_it,
    completing_a_task_logs_every_token_ended,
    disabling_an_agent_logs_it,
    deleting_an_agent_logs_it_its_children_and_their_tokens,
    a_policy_change_logs_the_agent,
    disabling_a_thread_scoped_parent_logs_the_parent,
    a_user_changed_is_logged,
    resolving_reserving_and_settling_uses_log_nothing,
    an_update_that_changes_nothing_logs_nothing,
    a_limit_bounds_the_changes_and_the_rest_follow,
    a_pruned_log_is_incomplete,
    the_log_keeps_only_recent_epochs,
    an_unreadable_row_is_every_change,
    a_reader_ahead_of_the_store_is_incomplete,
);

/// The store's epoch now.
async fn epoch<B: Backend>(store: &Store<B>) -> u64
where
    Store<B>: FeedStore,
{
    store.changes_since(0, 0).await.unwrap().epoch
}

/// The changes after `since`, checked complete, contiguous from `since + 1` and ending at the
/// store's epoch.
async fn changes_after<B: Backend>(store: &Store<B>, since: u64) -> Vec<Change>
where
    Store<B>: FeedStore,
{
    let Changes {
        notices,
        epoch,
        complete,
    } = store.changes_since(since, 100_000).await.unwrap();
    assert!(complete, "{notices:?}");
    let epochs: Vec<u64> = notices.iter().map(|n| n.epoch).collect();
    let expected: Vec<u64> = (since + 1..=epoch).collect();
    assert_eq!(epochs, expected, "contiguous up to the store's epoch");
    notices.into_iter().map(|n| n.change).collect()
}

fn as_set(changes: Vec<Change>) -> BTreeSet<String> {
    changes.into_iter().map(|c| format!("{c:?}")).collect()
}

fn token(issued: &IssuedToken) -> Change {
    Change::Token(issued.info.id.clone())
}

async fn agent_with_token<B: Backend>(store: &Store<B>, slug: &str) -> IssuedToken {
    let agent = store
        .create_agent(NewAgent::new(slug, "alice"))
        .await
        .unwrap();
    store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap()
}

async fn delegate<B: Backend>(store: &Store<B>, parent: &IssuedToken, slug: &str) -> IssuedToken {
    let target = store
        .create_agent(NewAgent::new(slug, "alice"))
        .await
        .unwrap();
    store
        .delegate(
            parent.token.expose_secret(),
            Delegation::to(target.id, "child"),
        )
        .await
        .unwrap()
}

async fn revoking_a_token_logs_it<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let issued = agent_with_token(&store, "writer").await;
    assert_eq!(epoch(&store).await, 0, "creating logs nothing");
    store
        .revoke_token(&issued.info.agent_id, &issued.info.id)
        .await
        .unwrap();
    assert_eq!(changes_after(&store, 0).await, vec![token(&issued)]);
    // Revoking again changes nothing: nothing is logged.
    store
        .revoke_token(&issued.info.agent_id, &issued.info.id)
        .await
        .unwrap();
    assert_eq!(epoch(&store).await, 1);
}

async fn revoking_all_tokens_of_an_agent_logs_each<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let first = agent_with_token(&store, "writer").await;
    let second = store
        .create_token(&first.info.agent_id, NewToken::new("2"))
        .await
        .unwrap();
    assert_eq!(
        store.revoke_all_tokens(&first.info.agent_id).await.unwrap(),
        2
    );
    assert_eq!(
        as_set(changes_after(&store, 0).await),
        as_set(vec![token(&first), token(&second)])
    );
}

/// The last use of a token that expires on completion moves its expiry: access ends, so it is
/// logged (the uses before it are not).
async fn spending_the_last_use_of_a_completing_token_logs_it<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let issued = store
        .create_token(
            &agent.id,
            NewToken::new("twice")
                .max_operations(2)
                .expires_on_completion(),
        )
        .await
        .unwrap();
    testing::resolve(&store, issued.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(epoch(&store).await, 0);
    testing::resolve(&store, issued.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(changes_after(&store, 0).await, vec![token(&issued)]);
}

async fn rotating_a_token_logs_the_old_one<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let issued = agent_with_token(&store, "writer").await;
    store
        .rotate_token(&issued.info.agent_id, &issued.info.id, Duration::ZERO)
        .await
        .unwrap();
    // The agent's last-rotated time is informative: not logged.
    assert_eq!(changes_after(&store, 0).await, vec![token(&issued)]);
}

async fn deleting_a_token_by_hand_logs_it<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let issued = agent_with_token(&store, "writer").await;
    store
        .exec(&format!(
            "DELETE FROM agent_auth_tokens WHERE id = '{}'",
            issued.info.id
        ))
        .await;
    assert_eq!(changes_after(&store, 0).await, vec![token(&issued)]);
}

async fn purging_logs_every_token_deleted_with_its_delegated_ones<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let root = agent_with_token(&store, "planner").await;
    let child = delegate(&store, &root, "writer").await;
    let kept = agent_with_token(&store, "editor").await;
    // Revoked long ago, by hand: the store's clock does not move.
    store
        .exec(&format!(
            "UPDATE agent_auth_tokens SET revoked_at = 1 WHERE id = '{}'",
            root.info.id
        ))
        .await;
    let before = epoch(&store).await;
    assert_eq!(before, 1);
    assert_eq!(store.purge(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(
        as_set(changes_after(&store, before).await),
        as_set(vec![token(&root), token(&child)])
    );
    assert!(
        testing::resolve(&store, kept.token.expose_secret())
            .await
            .is_ok()
    );
}

async fn revoking_a_tree_logs_every_token_of_it<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let root = agent_with_token(&store, "planner").await;
    let child = delegate(&store, &root, "writer").await;
    let grandchild = delegate(&store, &child, "editor").await;
    assert_eq!(
        store
            .revoke_token_tree(&root.info.agent_id, &root.info.id)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        as_set(changes_after(&store, 0).await),
        as_set(vec![token(&root), token(&child), token(&grandchild)])
    );
}

async fn completing_a_task_logs_every_token_ended<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let first = store
        .create_token(&agent.id, NewToken::new("1").task_id("t-1"))
        .await
        .unwrap();
    let second = store
        .create_token(&agent.id, NewToken::new("2").task_id("t-1"))
        .await
        .unwrap();
    let delegated = delegate(&store, &second, "editor").await;
    store
        .create_token(&agent.id, NewToken::new("3").task_id("t-2"))
        .await
        .unwrap();
    assert_eq!(
        store
            .complete_task(&UserId::from("alice"), "t-1")
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        as_set(changes_after(&store, 0).await),
        as_set(vec![token(&first), token(&second), token(&delegated)])
    );
}

async fn disabling_an_agent_logs_it<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::Agent(agent.id.clone())]
    );
}

async fn deleting_an_agent_logs_it_its_children_and_their_tokens<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let parent = store
        .create_agent(NewAgent::new("codex", "alice"))
        .await
        .unwrap();
    let child = store
        .create_agent(NewAgent::child("codex-thread-1", parent.id.clone()))
        .await
        .unwrap();
    let parents = store
        .create_token(&parent.id, NewToken::new("p"))
        .await
        .unwrap();
    let childs = store
        .create_token(&child.id, NewToken::new("c"))
        .await
        .unwrap();
    let delegated = delegate(&store, &parents, "writer").await;
    store.delete_agent(&parent.id).await.unwrap();
    assert_eq!(
        as_set(changes_after(&store, 0).await),
        as_set(vec![
            Change::Agent(parent.id.clone()),
            Change::Agent(child.id.clone()),
            token(&parents),
            token(&childs),
            // Delegated to another agent, deleted with the token it came from.
            token(&delegated),
        ])
    );
}

async fn a_policy_change_logs_the_agent<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    store
        .set_agent_policy(&agent.id, Policy::allow(testing::caps(&["posts:read"])))
        .await
        .unwrap();
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::Agent(agent.id.clone())]
    );
}

async fn disabling_a_thread_scoped_parent_logs_the_parent<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let parent = store
        .create_agent(NewAgent::new("codex", "alice"))
        .await
        .unwrap();
    let child = store
        .create_agent(NewAgent::child("codex-thread-1", parent.id.clone()))
        .await
        .unwrap();
    let childs = store
        .create_token(&child.id, NewToken::new("c"))
        .await
        .unwrap();
    store
        .set_agent_status(&parent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    // The child's verdicts depend on its parent: the cache finds them by the parent's id.
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::Agent(parent.id.clone())]
    );
    assert!(
        testing::resolve(&store, childs.token.expose_secret())
            .await
            .is_err()
    );
}

async fn a_user_changed_is_logged<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    agent_with_token(&store, "writer").await;
    assert_eq!(store.user_changed(&"alice".into()).await.unwrap(), 1);
    assert_eq!(store.user_changed(&"bob".into()).await.unwrap(), 2);
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::User("alice".into()), Change::User("bob".into())]
    );
}

async fn resolving_reserving_and_settling_uses_log_nothing<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let plain = agent_with_token(&store, "reader").await;
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let limited = store
        .create_token(&agent.id, NewToken::new("limited").max_operations(10))
        .await
        .unwrap();
    let delegated = delegate(&store, &limited, "editor").await;
    for _ in 0..3 {
        // Resolved, a use reserved and spent (down the chain for the delegated token).
        testing::resolve(&store, plain.token.expose_secret())
            .await
            .unwrap();
        testing::resolve(&store, limited.token.expose_secret())
            .await
            .unwrap();
        testing::resolve(&store, delegated.token.expose_secret())
            .await
            .unwrap();
    }
    // A use reserved then released.
    let parsed = store
        .token_format()
        .parse(limited.token.expose_secret())
        .unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    store.resolve(&lookup).await.unwrap();
    if let Some(release) = store.settle_use(&limited.info.id, false) {
        release.await;
    }
    // Last-used times written.
    store.flush_last_used().await.unwrap();
    let uses = store
        .token(&agent.id, &limited.info.id)
        .await
        .unwrap()
        .unwrap()
        .operations_remaining;
    assert_eq!(uses, Some(4), "6 spent");
    assert_eq!(epoch(&store).await, 0, "the request path logged a change");
    assert!(changes_after(&store, 0).await.is_empty());
}

async fn an_update_that_changes_nothing_logs_nothing<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    let issued = agent_with_token(&store, "writer").await;
    store
        .exec("UPDATE agent_auth_tokens SET revoked_at = revoked_at, label = label")
        .await;
    store
        .exec("UPDATE agent_auth_agents SET status = status, policy = policy")
        .await;
    store
        .set_agent_status(&issued.info.agent_id, AgentStatus::Active)
        .await
        .unwrap();
    assert_eq!(epoch(&store).await, 0);
    // A change by hand is logged like the store's own.
    store
        .exec("UPDATE agent_auth_tokens SET capabilities = '[\"posts:read\"]'")
        .await;
    assert_eq!(changes_after(&store, 0).await, vec![token(&issued)]);
}

async fn a_limit_bounds_the_changes_and_the_rest_follow<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    for n in 0..5 {
        store
            .user_changed(&UserId::from(format!("u{n}")))
            .await
            .unwrap();
    }
    let first = store.changes_since(0, 2).await.unwrap();
    assert_eq!(
        first,
        Changes {
            notices: vec![
                Notice {
                    epoch: 1,
                    change: Change::User("u0".into())
                },
                Notice {
                    epoch: 2,
                    change: Change::User("u1".into())
                },
            ],
            epoch: 5,
            complete: true,
        }
    );
    let rest = store.changes_since(2, 10).await.unwrap();
    assert_eq!(
        rest.notices.iter().map(|n| n.epoch).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let none = store.changes_since(3, 0).await.unwrap();
    assert!(none.notices.is_empty() && none.complete && none.epoch == 5);
    let caught_up = store.changes_since(5, 10).await.unwrap();
    assert!(caught_up.notices.is_empty() && caught_up.complete);
}

async fn a_pruned_log_is_incomplete<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    for n in 0..3 {
        store
            .user_changed(&UserId::from(format!("u{n}")))
            .await
            .unwrap();
    }
    store
        .exec("DELETE FROM agent_auth_changes WHERE epoch <= 2")
        .await;
    let pruned = store.changes_since(1, 10).await.unwrap();
    assert!(!pruned.complete);
    assert_eq!(pruned.epoch, 3);
    assert!(
        !store.changes_since(0, 0).await.unwrap().complete,
        "limit 0"
    );
    // From the first epoch still held, complete again.
    assert!(store.changes_since(2, 10).await.unwrap().complete);
}

async fn the_log_keeps_only_recent_epochs<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    for n in 0..3 {
        store
            .user_changed(&UserId::from(format!("u{n}")))
            .await
            .unwrap();
    }
    // As if 10,000 changes had been made since: the next one prunes the first three.
    store
        .exec("UPDATE agent_auth_change_epoch SET epoch = 10003")
        .await;
    let issued = agent_with_token(&store, "writer").await;
    store
        .revoke_token(&issued.info.agent_id, &issued.info.id)
        .await
        .unwrap();
    let after = store.changes_since(0, 10).await.unwrap();
    assert_eq!(after.epoch, 10004);
    assert!(!after.complete);
    assert_eq!(
        after.notices,
        vec![Notice {
            epoch: 10004,
            change: token(&issued)
        }]
    );
    assert!(store.changes_since(10003, 10).await.unwrap().complete);
}

async fn an_unreadable_row_is_every_change<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    store
        .exec(
            "UPDATE agent_auth_change_epoch SET epoch = epoch + 2; \
             INSERT INTO agent_auth_changes (epoch, kind, id, at) VALUES (1, 'mystery', 'x', 0); \
             INSERT INTO agent_auth_changes (epoch, kind, id, at) VALUES (2, 'token', '', 0)",
        )
        .await;
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::All, Change::All]
    );
}

async fn a_reader_ahead_of_the_store_is_incomplete<B: Backend>(store: Store<B>)
where
    Store<B>: FeedStore,
{
    store.user_changed(&"alice".into()).await.unwrap();
    let ahead = store.changes_since(7, 10).await.unwrap();
    assert!(!ahead.complete && ahead.epoch == 1 && ahead.notices.is_empty());
}

/// A database at schema 10 (as the previous release left it) migrates to 11: its rows stay,
/// its epoch starts at 0, and its changes are logged from then on.
async fn schema_10_upgrade<B: Backend>(store: Store<B>, tokens: usize)
where
    Store<B>: FeedStore,
{
    assert_eq!(epoch(&store).await, 0);
    let agent = store.agent_by_slug("legacy").await.unwrap().unwrap();
    let listed = store.list_tokens(&agent.id).await.unwrap();
    assert_eq!(listed.len(), tokens);
    store.revoke_token(&agent.id, &listed[0].id).await.unwrap();
    assert_eq!(
        changes_after(&store, 0).await,
        vec![Change::Token(listed[0].id.clone())]
    );
}

/// The library's migrations 1 to 10 for `dir`, and the statement recording them.
fn schema_10(dir: &str) -> String {
    use sha2::{Digest, Sha256};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut sql = String::from(
        "CREATE TABLE agent_auth_schema_migrations (version BIGINT PRIMARY KEY, \
         description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL);\n",
    );
    for (n, file) in files.iter().take(10).enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        sql.push_str(&text);
        sql.push_str(";\n");
        sql.push_str(&format!(
            "INSERT INTO agent_auth_schema_migrations VALUES ({}, 'm', '{}', 0);\n",
            n + 1,
            hex::encode(Sha256::digest(text.as_bytes()))
        ));
    }
    sql.push_str(
        "INSERT INTO agent_auth_agents (id, slug, owner, agent_type, status, policy, created_at) \
         VALUES ('agt_1', 'legacy', 'alice', 'autonomous', 'active', \
         '{\"allow\":null,\"deny\":[]}', 0);\n\
         INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, created_at) \
         VALUES ('tok_1', 'agt_1', X'01', 'acme_legacy_', 'one', 0), \
         ('tok_2', 'agt_1', X'02', 'acme_legacy_', 'two', 0);\n",
    );
    sql
}

#[tokio::test]
async fn a_schema_10_sqlite_database_migrates_to_11_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db").display().to_string();
    let pool = SqliteStore::connect_pool(&path).await.unwrap();
    sqlx::raw_sql(&schema_10("sqlite"))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(SqliteStore::schema_version(&pool).await.unwrap(), Some(10));
    let users = testing::users();
    let clock = testing::clock();
    let store = SqliteStore::from_pool(pool, testing::config(&users, &clock))
        .await
        .unwrap();
    // Migrated to 11, and to every later version.
    assert_eq!(
        SqliteStore::schema_version(store.pool()).await.unwrap(),
        Some(SqliteStore::SCHEMA_VERSION)
    );
    schema_10_upgrade(store, 2).await;
}

#[tokio::test]
async fn a_schema_10_postgres_database_migrates_to_11_keeping_its_rows() {
    let Some(url) = postgres_url() else { return };
    let (schema, pool, admin) = fresh_schema(&url).await;
    // PostgreSQL spells a byte string '\x01'.
    let sql = schema_10("postgres")
        .replace("X'01'", "'\\x01'")
        .replace("X'02'", "'\\x02'");
    sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
    assert_eq!(PgStore::schema_version(&pool).await.unwrap(), Some(10));
    let users = testing::users();
    let clock = testing::clock();
    let store = PgStore::from_pool(pool, testing::config(&users, &clock))
        .await
        .unwrap();
    // Migrated to 11, and to every later version.
    assert_eq!(
        PgStore::schema_version(store.pool()).await.unwrap(),
        Some(PgStore::SCHEMA_VERSION)
    );
    schema_10_upgrade(store, 2).await;
    drop_schema(&admin, &schema).await;
}

/// Two nodes: stores of their own pools on one PostgreSQL schema.
async fn two_nodes(url: &str) -> Option<(PgStore, PgStore, String, sqlx::PgPool)> {
    let (schema, pool, admin) = fresh_schema(url).await;
    let users = testing::users();
    let clock = testing::clock();
    let a = PgStore::from_pool(pool, testing::config(&users, &clock))
        .await
        .unwrap();
    let b = PgStore::from_pool(
        schema_pool(url, &schema).await,
        testing::config(&users, &clock),
    )
    .await
    .unwrap();
    Some((a, b, schema, admin))
}

async fn next_within(
    subscription: &mut Box<dyn tower_agent_auth::cache::Subscription>,
) -> Result<Notice, tower_agent_auth::error::BoxError> {
    tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("a notice within 5 s")
}

#[tokio::test]
async fn a_revoke_on_one_node_is_heard_on_the_other() {
    let Some(url) = postgres_url() else { return };
    let Some((a, b, schema, admin)) = two_nodes(&url).await else {
        return;
    };
    let mut subscription = b.subscribe().await.unwrap().expect("PostgreSQL notifies");
    let issued = agent_with_token(&a, "writer").await;
    a.revoke_token(&issued.info.agent_id, &issued.info.id)
        .await
        .unwrap();
    a.user_changed(&"alice".into()).await.unwrap();
    assert_eq!(
        next_within(&mut subscription).await.unwrap(),
        Notice {
            epoch: 1,
            change: token(&issued)
        }
    );
    assert_eq!(
        next_within(&mut subscription).await.unwrap(),
        Notice {
            epoch: 2,
            change: Change::User("alice".into())
        }
    );
    assert_eq!(
        changes_after(&b, 0).await,
        vec![token(&issued), Change::User("alice".into())]
    );
    drop(subscription);
    drop_schema(&admin, &schema).await;
}

/// `TRUNCATE` fires no row triggers: its statement trigger logs a change that drops every
/// verdict, so emptying the table by hand is heard too.
#[tokio::test]
async fn a_truncate_by_hand_is_every_change() {
    let Some(url) = postgres_url() else { return };
    let Some((a, b, schema, admin)) = two_nodes(&url).await else {
        return;
    };
    agent_with_token(&a, "writer").await;
    sqlx::query(&format!("TRUNCATE {schema}.agent_auth_tokens CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(changes_after(&b, 0).await, vec![Change::All]);
    drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn a_change_by_hand_from_another_search_path_is_logged_and_heard() {
    let Some(url) = postgres_url() else { return };
    let Some((a, b, schema, admin)) = two_nodes(&url).await else {
        return;
    };
    let mut subscription = b.subscribe().await.unwrap().unwrap();
    let issued = agent_with_token(&a, "writer").await;
    // An operator's session, its search path the default one: the tables named by schema.
    sqlx::query(&format!(
        "UPDATE {schema}.agent_auth_tokens SET revoked_at = 1 WHERE id = $1"
    ))
    .bind(issued.info.id.as_str())
    .execute(&admin)
    .await
    .unwrap();
    assert_eq!(
        next_within(&mut subscription).await.unwrap().change,
        token(&issued)
    );
    assert_eq!(changes_after(&a, 0).await, vec![token(&issued)]);
    drop(subscription);
    drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn stores_in_two_schemas_do_not_hear_each_other() {
    let Some(url) = postgres_url() else { return };
    let Some((a, _, schema, admin)) = two_nodes(&url).await else {
        return;
    };
    let Some((other, _, other_schema, _)) = two_nodes(&url).await else {
        return;
    };
    let mut subscription = a.subscribe().await.unwrap().unwrap();
    other.user_changed(&"bob".into()).await.unwrap();
    a.user_changed(&"alice".into()).await.unwrap();
    assert_eq!(
        next_within(&mut subscription).await.unwrap(),
        Notice {
            epoch: 1,
            change: Change::User("alice".into())
        }
    );
    drop(subscription);
    drop_schema(&admin, &schema).await;
    drop_schema(&admin, &other_schema).await;
}

#[tokio::test]
async fn a_lost_listening_connection_is_an_error_not_silence() {
    let Some(url) = postgres_url() else { return };
    let Some((a, b, schema, admin)) = two_nodes(&url).await else {
        return;
    };
    let mut subscription = b.subscribe().await.unwrap().unwrap();
    a.user_changed(&"alice".into()).await.unwrap();
    assert_eq!(next_within(&mut subscription).await.unwrap().epoch, 1);
    // This schema's listener only: other tests listen on channels of their own.
    let channel: String = sqlx::query_scalar("SELECT agent_auth_change_channel()")
        .fetch_one(a.pool())
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'agent-auth change feed' AND query = $1",
    )
    .bind(format!("LISTEN \"{channel}\""))
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true]);
    assert!(next_within(&mut subscription).await.is_err());
    // Broken for good: notices may be missing, so the cache subscribes again.
    a.user_changed(&"bob".into()).await.unwrap();
    assert!(next_within(&mut subscription).await.is_err());
    let mut again = b.subscribe().await.unwrap().unwrap();
    a.user_changed(&"carol".into()).await.unwrap();
    assert_eq!(next_within(&mut again).await.unwrap().epoch, 3);
    drop(again);
    drop_schema(&admin, &schema).await;
}
