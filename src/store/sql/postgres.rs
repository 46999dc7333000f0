use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use super::{Dialect, sql_store};

/// The PostgreSQL store, shared by many nodes (feature `postgres`).
///
/// Every node opens its own `PgStore` on the same database; use limits are enforced by the
/// database, so they hold across nodes. Migrations take an advisory lock, so nodes starting
/// together apply them once.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

/// Serialises migrations across nodes (an arbitrary constant: "agentaut" in ASCII).
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7018141354911790452)";

sql_store!(
    PgStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    Dialect::Postgres,
    super::migrate::POSTGRES,
    Some(MIGRATION_LOCK)
);

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`) with a pool of 16 connections that waits at
    /// most 3 s for one, and applies the migrations.
    pub async fn connect(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(store_error)?;
        Self::from_pool(pool, config).await
    }

    /// A store on an existing pool (migrations applied unless the configuration says not to).
    pub async fn from_pool(pool: sqlx::PgPool, config: StoreConfig) -> Result<Self, StoreError> {
        Self::with_pool(pool, config).await
    }
}
