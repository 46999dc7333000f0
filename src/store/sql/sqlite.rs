use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use time::OffsetDateTime;

use super::SqlBackend;
use super::audit_row::{AUDIT_COLUMN_COUNT, AUDIT_COLUMNS, AuditRow};
use super::dialect::{BoxFuture, Dialect, Subscribed};
use super::migrate::{MigrateError, MigrationSet};
use super::pool::{PoolSettings, unreachable};
use crate::error::ChangeFeedError;
use crate::error::StoreError;
use crate::store::{Store, StoreConfig};

/// The embedded store: one SQLite file, no server (feature `sqlite`).
///
/// ```
/// use tower_agent_auth::store::{MemoryUserDirectory, NewAgent, NewToken, StoreConfig, UserRecord, SqliteStore};
/// use tower_agent_auth::token::TokenFormat;
/// use tower_agent_auth::ceiling::Policy;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("agent-auth-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("doc.db");
/// let users = MemoryUserDirectory::new();
/// users.insert(UserRecord::new("alice", Policy::unrestricted()));
/// let config = StoreConfig::new(TokenFormat::new("acme")?, users);
/// // Created on first use, reused afterwards; migrations are applied on open.
/// let store = SqliteStore::open(&path.display().to_string(), config).await?;
/// let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
/// let issued = store.create_token(&agent.id, NewToken::new("ci")).await?;
/// assert_eq!(store.list_tokens(&agent.id).await?[0].id, issued.info.id);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
///
/// Its [`ChangeFeed`](crate::cache::ChangeFeed) has no subscription (SQLite notifies no other
/// process): a cache learns of changes, the CLI's in another process included, by polling
/// `changes_since`.
pub type SqliteStore = Store<SqlBackend<sqlx::Sqlite>>;

impl Store<SqlBackend<sqlx::Sqlite>> {
    /// Opens (creating it if missing) the database at `url`: a path such as `agent-auth.db` or a
    /// URL such as `sqlite://agent-auth.db`. Write-ahead logging lets readers and the writer
    /// work at once; a writer waits up to 5 s for another.
    pub async fn open(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        Self::from_pool(Self::connect_pool(url).await?, config).await
    }

    /// The pool [`SqliteStore::open`] uses for `url`, for sharing it with tables of your own
    /// before handing it to [`SqliteStore::from_pool`].
    pub async fn connect_pool(url: &str) -> Result<sqlx::SqlitePool, StoreError> {
        Self::connect_pool_with(url, PoolSettings::default()).await
    }

    /// A pool for `url` bounded by `settings` (a writer waits for another at most the statement
    /// timeout). An error names the file and why it cannot be opened.
    pub async fn connect_pool_with(
        url: &str,
        settings: PoolSettings,
    ) -> Result<sqlx::SqlitePool, StoreError> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::invalid(format!("database URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(settings.statement_timeout_value())
            .foreign_keys(true);
        let what = format!("SQLite database {}", options.get_filename().display());
        SqlitePoolOptions::new()
            .max_connections(settings.connections_or(8))
            .acquire_timeout(settings.acquire())
            .connect_with(options)
            .await
            .map_err(|error| unreachable(&what, error))
    }

    /// A store on an existing pool (migrations applied unless the configuration says not to).
    pub async fn from_pool(
        pool: sqlx::SqlitePool,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        SqlBackend::open(pool, config).await
    }
}

impl Dialect for sqlx::Sqlite {
    const TABLE_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";

    const MIGRATIONS: MigrationSet = MigrationSet {
        table: "agent_auth_schema_migrations",
        // A write transaction on SQLite excludes every other writer.
        lock: None,
        migrations: super::library_migrations!("sqlite"),
    };

    // SQLite has one writer at a time: the chain's rows need no lock. The chain is `$2` and
    // every token it was delegated from; columns on the right of SET hold the values before
    // the update, so the last use in flight of a spent token completes its task.
    const SPEND: &'static str = "UPDATE agent_auth_tokens \
        SET operations_in_flight = operations_in_flight - 1, \
            expires_at = CASE WHEN expires_on_completion AND operations_remaining = 0 \
                AND operations_in_flight = 1 THEN $1 ELSE expires_at END \
        WHERE operations_in_flight > 0 AND id IN ( \
            WITH RECURSIVE chain(id, step) AS ( \
                SELECT CAST($2 AS TEXT), 0 \
                UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
                JOIN chain c ON d.id = c.id \
                WHERE d.delegation_parent IS NOT NULL AND c.step < 64) \
            SELECT id FROM chain)";
    const RELEASE: &'static str = "UPDATE agent_auth_tokens \
        SET operations_in_flight = operations_in_flight - 1, \
            operations_remaining = operations_remaining + 1 \
        WHERE operations_in_flight > 0 AND id IN ( \
            WITH RECURSIVE chain(id, step) AS ( \
                SELECT CAST($1 AS TEXT), 0 \
                UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
                JOIN chain c ON d.id = c.id \
                WHERE d.delegation_parent IS NOT NULL AND c.step < 64) \
            SELECT id FROM chain)";

    #[cfg(feature = "approval")]
    const APPROVAL_BEGIN: &'static str = "BEGIN IMMEDIATE";
    #[cfg(feature = "approval")]
    const APPROVAL_LOCK: Option<&'static str> = None;
    #[cfg(feature = "oauth")]
    const REGISTRATION_LOCK: Option<&'static str> = None;

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Multi-row inserts of fixed sizes (128 rows, then single rows for the rest) in one
    /// transaction: few statements per batch, and only two statement texts, so both stay
    /// prepared in the connection's cache whatever the batch size.
    fn insert_audit_rows(
        pool: &sqlx::SqlitePool,
        rows: Vec<AuditRow>,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            const CHUNK: usize = 128;
            // Anonymous `?` parameters, bound in order: sqlx asks SQLite each parameter's name,
            // and SQLite finds a numbered one (`$N`) by scanning all of them, which made a
            // 128-row statement's binding quadratic (most of `serve`'s time under load).
            let statement = |rows: usize| {
                let row = format!("({})", vec!["?"; AUDIT_COLUMN_COUNT].join(", "));
                let values = vec![row; rows];
                format!(
                    "INSERT INTO agent_auth_audit_events ({AUDIT_COLUMNS}) VALUES {}",
                    values.join(", ")
                )
            };
            let (chunked, single) = (statement(CHUNK), statement(1));
            let full = rows.len() / CHUNK * CHUNK;
            let mut rows = rows.into_iter();
            let mut tx = pool.begin().await?;
            for _ in 0..full / CHUNK {
                let query = rows
                    .by_ref()
                    .take(CHUNK)
                    .fold(sqlx::query(&chunked), bind_row);
                query.execute(&mut *tx).await?;
            }
            for row in rows {
                bind_row(sqlx::query(&single), row)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    fn log_change<'a>(
        pool: &'a sqlx::SqlitePool,
        kind: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<i64, sqlx::Error>> {
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let epoch: i64 = sqlx::query_scalar(
                "UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
            )
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO agent_auth_changes (epoch, kind, id, at) VALUES ($1, $2, $3, \
                 CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))",
            )
            .bind(epoch)
            .bind(kind)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM agent_auth_changes WHERE epoch <= $1")
                .bind(epoch - super::feed::CHANGES_KEPT)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(epoch)
        })
    }

    /// SQLite sends no notices: readers poll `changes_since`.
    fn subscribe(
        _pool: &sqlx::SqlitePool,
    ) -> BoxFuture<'_, Result<Option<Subscribed>, ChangeFeedError>> {
        Box::pin(async { Ok(None) })
    }

    fn migrate<'a>(
        pool: &'a sqlx::SqlitePool,
        set: &'a MigrationSet,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), MigrateError>> {
        Box::pin(super::migrate::apply(pool, set, now))
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds one audit row's columns, in [`AUDIT_COLUMNS`] order.
fn bind_row(query: SqliteQuery<'_>, row: AuditRow) -> SqliteQuery<'_> {
    query
        .bind(row.at)
        .bind(row.agent_id)
        .bind(row.parent_agent_id)
        .bind(row.token_id)
        .bind(row.actor)
        .bind(row.delegation_chain)
        .bind(row.action)
        .bind(row.outcome)
        .bind(row.reason)
        .bind(row.method)
        .bind(row.path)
        .bind(row.status)
        .bind(row.task_id)
        .bind(row.detail)
        .bind(row.occurrences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_walks_the_deepest_chain_issued() {
        let limit = format!("c.step < {}", crate::store::MAX_DELEGATION_DEPTH_LIMIT);
        for statement in [
            <sqlx::Sqlite as Dialect>::SPEND,
            <sqlx::Sqlite as Dialect>::RELEASE,
        ] {
            assert!(statement.contains(&limit), "{statement}");
        }
    }
}
