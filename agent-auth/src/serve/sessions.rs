//! Browser sessions on the server's database: tower-sessions-sqlx-store's `SqliteStore` or
//! `PostgresStore` on the pool the store and the user table use, so that a session outlives a
//! restart and every node on one PostgreSQL knows it.
//!
//! The table (`agent_auth_sessions`) comes from this binary's migrations, not from the
//! store's `migrate()`: they run under PostgreSQL's advisory lock, so nodes starting together
//! do not race (the store's `create schema` on a race returns without creating its table),
//! the version is recorded and checked by the commands that do not migrate, and the table
//! lives beside the others, in the connection's schema, rather than in a schema of its own.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use tower_agent_auth::server::Sessions;
use tower_agent_auth::store::UserDirectory;
use tower_sessions_core::ExpiredDeletion;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::database::{Accounts, Pool};

/// The sessions' table, created by migration 4.
const TABLE: &str = "agent_auth_sessions";

/// How often expired sessions are deleted. An expired session is refused at once whatever
/// this is: the deletion only reclaims the rows.
const DELETION_PERIOD: Duration = Duration::from_secs(600);

/// Sessions of `accounts`' users, each valid for `lifetime`, in the database `accounts` is
/// on; a task deletes the expired ones now and every [`DELETION_PERIOD`].
pub(super) async fn on_database(
    accounts: &Arc<Accounts>,
    lifetime: Duration,
) -> Result<Sessions, Box<dyn Error>> {
    let directory: Arc<dyn UserDirectory> = accounts.clone();
    Ok(match accounts.pool() {
        Pool::Sqlite(pool) => {
            let store = SqliteStore::new(pool.clone()).with_table_name(TABLE)?;
            tokio::spawn(delete_expired(store.clone()));
            Sessions::with_store(directory, lifetime, store)
        }
        Pool::Postgres(pool) => {
            // Where the migrations created the table: the connection's current schema.
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(pool)
                .await?;
            let store = PostgresStore::new(pool.clone())
                .with_schema_name(schema)?
                .with_table_name(TABLE)?;
            tokio::spawn(delete_expired(store.clone()));
            Sessions::with_store(directory, lifetime, store)
        }
    })
}

/// Deletes expired sessions every [`DELETION_PERIOD`], first at once (what expired while the
/// server was down). A failure is logged and the next period tries again: an outage must not
/// end the task, as tower-sessions' own `continuously_delete_expired` would.
async fn delete_expired(store: impl ExpiredDeletion) {
    let mut every = tokio::time::interval(DELETION_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = store.delete_expired().await {
            tracing::warn!(%error, "expired sessions not deleted; trying again later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use tower_sessions_core::SessionStore;
    use tower_sessions_core::session::{Id, Record};

    /// The migration's table is the store's: records go in and out, and the expired ones go.
    #[tokio::test]
    async fn the_migrated_table_serves_the_sqlite_store_and_expired_rows_are_deleted() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(include_str!("../../migrations/sqlite/0004_sessions.sql"))
            .execute(&pool)
            .await
            .unwrap();
        let store = SqliteStore::new(pool.clone())
            .with_table_name(TABLE)
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let record = |id, expiry_date| Record {
            id: Id(id),
            data: Default::default(),
            expiry_date,
        };
        let live = record(1, now + time::Duration::hours(1));
        let expired = record(2, now - time::Duration::seconds(1));
        store.save(&live).await.unwrap();
        store.save(&expired).await.unwrap();
        assert_eq!(store.load(&live.id).await.unwrap(), Some(live.clone()));
        assert_eq!(store.load(&expired.id).await.unwrap(), None);
        store.delete_expired().await.unwrap();
        let left: Vec<String> = sqlx::query_scalar("SELECT id FROM agent_auth_sessions")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(left, [live.id.to_string()]);
    }
}
