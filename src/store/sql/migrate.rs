//! Versioned, checksummed migrations: the machinery, for any set of them (features `sqlite`,
//! `postgres`).
//!
//! A [`MigrationSet`] names the table its applied versions are recorded in, so that sets of
//! different owners (the library's tables; an application's own, such as the `agent-auth`
//! binary's users table) are applied and upgraded independently on one database. Applying a set
//! takes one transaction: the migrations not yet applied run in version order and are recorded
//! with the SHA-256 of their SQL; a database that recorded a version this build does not know,
//! or a checksum that differs, is refused.
//!
//! The stores apply their own set when opened; an application applies its set after them with
//! [`apply`]:
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn example(pool: sqlx::SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
//! use tower_agent_auth::store::migrate::{self, Migration, MigrationSet};
//!
//! const MINE: MigrationSet = MigrationSet {
//!     table: "my_app_migrations",
//!     lock: None,
//!     migrations: &[Migration {
//!         version: 1,
//!         description: "notes",
//!         sql: "CREATE TABLE my_app_notes (id BIGINT PRIMARY KEY, text TEXT NOT NULL)",
//!     }],
//! };
//! migrate::apply(&pool, &MINE, time::OffsetDateTime::now_utc()).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version: unique in its set, applied in ascending order.
    pub version: i64,
    /// What it does, recorded beside the version.
    pub description: &'static str,
    /// The statements, run as one script (several statements are fine).
    pub sql: &'static str,
}

impl Migration {
    /// SHA-256 of the SQL: a migration edited after it was applied is refused.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// Migrations applied and recorded together.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// The table recording which versions are applied (created if missing): one per set.
    pub table: &'static str,
    /// A statement run first in the transaction, serialising concurrent appliers (PostgreSQL's
    /// advisory lock, after lifting the statement timeout for the migration's transaction: a
    /// migration, or a node waiting for another's, takes as long as it takes); `None` where the
    /// database serialises writers itself (SQLite).
    pub lock: Option<&'static str>,
    /// In version order.
    pub migrations: &'static [Migration],
}

/// Why a set could not be applied. Nothing was changed when one is returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database failed.
    Database(sqlx::Error),
    /// The database recorded a version this build does not know.
    Newer(i64),
    /// An applied migration's SQL differs from this build's.
    Edited(i64),
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(error) => error.fmt(f),
            Self::Newer(version) => write!(
                f,
                "the database schema (migration {version}) is newer than this build"
            ),
            Self::Edited(version) => {
                write!(f, "migration {version} was changed after it was applied")
            }
        }
    }
}

impl std::error::Error for MigrateError {}

impl From<sqlx::Error> for MigrateError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A database [`apply`] runs on: every sqlx database with the types a migration table needs
/// (`sqlx::Sqlite` and `sqlx::Postgres`). Implemented for them; nothing to implement.
///
/// Each statement's future is boxed here, where the bounds below are known: a generic `async`
/// block holding sqlx's executor futures directly would not be provably `Send`.
pub trait Applies: Database {
    /// Runs `sql` as a script.
    fn run<'a>(
        on: &'a mut Self::Connection,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    /// The versions and checksums recorded in `table`.
    fn applied<'a>(
        on: &'a mut Self::Connection,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(i64, String)>, sqlx::Error>>;
    /// Records `migration` as applied at `now` (Unix microseconds) in `table`.
    fn record<'a>(
        on: &'a mut Self::Connection,
        table: &'a str,
        migration: &'a Migration,
        now: i64,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

impl<DB> Applies for DB
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
{
    fn run<'a>(
        on: &'a mut Self::Connection,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move { on.execute(sqlx::raw_sql(sql)).await.map(drop) })
    }

    fn applied<'a>(
        on: &'a mut Self::Connection,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(i64, String)>, sqlx::Error>> {
        Box::pin(async move {
            let select = format!("SELECT version, checksum FROM {table}");
            let rows = sqlx::query(&select).fetch_all(on).await?;
            rows.iter()
                .map(|row| Ok((row.try_get("version")?, row.try_get("checksum")?)))
                .collect()
        })
    }

    fn record<'a>(
        on: &'a mut Self::Connection,
        table: &'a str,
        migration: &'a Migration,
        now: i64,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let insert = format!(
                "INSERT INTO {table} (version, description, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4)"
            );
            sqlx::query(&insert)
                .bind(migration.version)
                .bind(migration.description)
                .bind(migration.checksum())
                .bind(now)
                .execute(on)
                .await
                .map(drop)
        })
    }
}

/// Applies the migrations of `set` not applied yet, in one transaction, recording them as
/// applied at `now` (read from the caller's clock: a store's, its configuration's); refuses a
/// database that recorded a version `set` does not hold, or whose applied migration's SQL
/// differs.
pub async fn apply<DB: Applies>(
    pool: &Pool<DB>,
    set: &MigrationSet,
    now: time::OffsetDateTime,
) -> Result<(), MigrateError> {
    let table = set.table;
    let mut tx = pool.begin().await?;
    if let Some(lock) = set.lock {
        DB::run(&mut tx, lock).await?;
    }
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (
    version     BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  BIGINT NOT NULL
)"
    );
    DB::run(&mut tx, &create).await?;
    let applied = DB::applied(&mut tx, table).await?;
    for (version, checksum) in &applied {
        match set.migrations.iter().find(|m| m.version == *version) {
            None => return Err(MigrateError::Newer(*version)),
            Some(m) if m.checksum() != *checksum => return Err(MigrateError::Edited(*version)),
            Some(_) => {}
        }
    }
    let now = i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
    for migration in set
        .migrations
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
    {
        DB::run(&mut tx, migration.sql).await?;
        DB::record(&mut tx, table, migration, now).await?;
    }
    tx.commit().await?;
    Ok(())
}
