//! What the SQL benchmarks share: the store configuration and a PostgreSQL store in a schema of
//! its own.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::store::{MemoryUserDirectory, PgStore, StoreConfig, UserRecord};
use tower_agent_auth::token::TokenFormat;

/// Prefix `bench`, one unrestricted user `alice`.
pub fn config() -> StoreConfig {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    StoreConfig::new(TokenFormat::new("bench").unwrap(), users)
}

/// A store on a fresh `schema` of the server at `url` (dropped first if a crashed run left it),
/// and an admin pool to drop it with [`drop_schema`].
pub async fn pg_store_in_schema(url: &str, schema: &str) -> (PgStore, sqlx::PgPool) {
    let admin = sqlx::PgPool::connect(url).await.unwrap();
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
    let options: PgConnectOptions = url.parse().unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap();
    (PgStore::from_pool(pool, config()).await.unwrap(), admin)
}

/// Drops what [`pg_store_in_schema`] made.
pub async fn drop_schema(store: PgStore, admin: &sqlx::PgPool, schema: &str) {
    store.pool().close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(admin)
        .await
        .unwrap();
}
