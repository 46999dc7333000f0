//! Opening the database: the store (SQLite or PostgreSQL) and the reference server's own user
//! table, which is also the stores' `UserDirectory`.
//!
//! The user table is the binary's, not the library's: it comes from the binary's own
//! migrations (`migrations/agent-auth/`, the same SQL on both databases), applied by the
//! library's migration machinery (the same file, compiled here) and recorded in
//! `agent_auth_server_migrations`, apart from the library's `agent_auth_schema_migrations`.

use std::sync::Arc;

use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::reason::BoxError;
use tower_agent_auth::server::{
    PasswordVerifier, hash_password_off_runtime, verify_password_off_runtime,
};
use tower_agent_auth::store::{
    PgStore, SqliteStore, StoreConfig, StoreError, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;

/// The store, on either backend.
#[derive(Clone)]
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs `$body` with `$store` bound to the concrete store.
#[macro_export]
macro_rules! dispatch {
    ($backend:expr, $store:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($store) => $body,
            $crate::backend::Backend::Postgres($store) => $body,
        }
    };
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs the same query on either pool. Queries number their parameters (`$1`, `$2`, …): sqlx
/// binds `$N` by number on SQLite as on PostgreSQL, so one text serves both.
macro_rules! on_pool {
    ($accounts:expr, $pool:ident => $body:expr) => {
        match &$accounts.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

#[path = "../../store/sql/migrate.rs"]
mod migrate;

use migrate::{Migration, MigrationSet};

/// The binary's schema: versions recorded in a table of their own.
const fn migrations(lock: Option<&'static str>) -> MigrationSet {
    MigrationSet {
        table: "agent_auth_server_migrations",
        lock,
        migrations: &[Migration {
            version: 1,
            description: "users",
            sql: include_str!("../../../migrations/agent-auth/0001_users.sql"),
        }],
    }
}

const SQLITE_MIGRATIONS: MigrationSet = migrations(None);
/// Serialises servers starting together (another constant than the library's: "agentsrv").
const POSTGRES_MIGRATIONS: MigrationSet =
    migrations(Some("SELECT pg_advisory_xact_lock(7018690069354738294)"));

/// A user of the reference server.
pub struct Account {
    pub id: String,
    pub capabilities: Option<Vec<String>>,
    pub active: bool,
    pub has_password: bool,
    pub created_at: i64,
}

/// The user table: the stores' user directory, and the login's password check.
#[derive(Clone)]
pub struct Accounts {
    pool: Pool,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::unavailable(error)
}

impl Accounts {
    /// Applies the binary's migrations not applied yet.
    async fn migrate(&self) -> Result<(), StoreError> {
        let applied = match &self.pool {
            Pool::Sqlite(pool) => migrate::apply(pool, &SQLITE_MIGRATIONS).await,
            Pool::Postgres(pool) => migrate::apply(pool, &POSTGRES_MIGRATIONS).await,
        };
        applied.map_err(|e| match e {
            migrate::MigrateError::Database(e) => unavailable(e),
            e => StoreError::unavailable(e.to_string()),
        })
    }

    /// Adds a user; a duplicate id is refused.
    pub async fn add(
        &self,
        id: &str,
        capabilities: Option<&CapabilitySet>,
        password_hash: Option<String>,
    ) -> Result<(), StoreError> {
        if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_control() || c == ',') {
            return Err(StoreError::InvalidInput(
                "user id: 1-100 bytes, no commas or control characters".into(),
            ));
        }
        let capabilities =
            capabilities.map(|c| serde_json::to_string(&c.to_strings()).unwrap_or_default());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let result = on_pool!(self, pool => {
            sqlx::query("INSERT INTO agent_auth_users (id, capabilities, active, password_hash, created_at) VALUES ($1, $2, 1, $3, $4)")
                .bind(id)
                .bind(capabilities)
                .bind(password_hash)
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(
                StoreError::InvalidInput(format!("a user {id:?} already exists")),
            ),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Every user, by id.
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        type Row = (String, Option<String>, i32, Option<String>, i64);
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, capabilities, active, password_hash, created_at FROM agent_auth_users ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(unavailable)?
        });
        rows.into_iter()
            .map(|(id, capabilities, active, hash, created_at)| {
                Ok(Account {
                    id,
                    capabilities: capabilities
                        .map(|c| serde_json::from_str(&c))
                        .transpose()
                        .map_err(|_| {
                            StoreError::InvalidInput("stored capabilities are not valid".into())
                        })?,
                    active: active != 0,
                    has_password: hash.is_some(),
                    created_at,
                })
            })
            .collect()
    }

    /// Activates or deactivates a user: an inactive owner's agents are refused.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), StoreError> {
        let changed = on_pool!(self, pool => {
            sqlx::query("UPDATE agent_auth_users SET active = $1 WHERE id = $2")
                .bind(i32::from(active))
                .bind(id)
                .execute(pool)
                .await
                .map_err(unavailable)?
                .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::UnknownUser(id.to_owned()));
        }
        Ok(())
    }

    async fn row(
        &self,
        id: &str,
    ) -> Result<Option<(Option<String>, i32, Option<String>)>, sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query_as("SELECT capabilities, active, password_hash FROM agent_auth_users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }
}

#[async_trait::async_trait]
impl UserDirectory for Accounts {
    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, BoxError> {
        let Some((capabilities, active, _)) =
            self.row(id.as_str()).await.map_err(BoxError::from)?
        else {
            return Ok(None);
        };
        let role = match capabilities {
            None => Policy::unrestricted(),
            Some(text) => {
                let names: Vec<String> = serde_json::from_str(&text)?;
                Policy::allow(CapabilitySet::parse(names)?)
            }
        };
        Ok(Some(
            UserRecord::new(id.clone(), role).with_active(active != 0),
        ))
    }
}

#[async_trait::async_trait]
impl PasswordVerifier for Accounts {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError> {
        // Every attempt costs one Argon2 verification, so timing does not tell which users exist.
        // Argon2 runs on the shared hashing pool (blocking threads, half the cores), never on
        // the runtime's workers: sign-ins cannot stall other requests.
        static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let row = self.row(user).await?;
        let (active, hash) = match row {
            Some((_, active, Some(hash))) => (active != 0, hash),
            _ => {
                let dummy = DUMMY
                    .get_or_try_init(|| hash_password_off_runtime("not a password".to_owned()))
                    .await?;
                (false, dummy.clone())
            }
        };
        let matches = verify_password_off_runtime(hash, password.to_owned()).await?;
        Ok((active && matches).then(|| UserId::from(user)))
    }
}

/// Opens the database at `url` (`postgres://…` or a SQLite path / `sqlite://` URL) and applies
/// the binary's migrations (the user table) and the store's.
pub async fn open(
    url: &str,
    prefix: &str,
    create: bool,
) -> Result<(Backend, Arc<Accounts>), StoreError> {
    if !create && !url.starts_with("postgres") {
        // A mistyped path must not quietly become a new, empty database.
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default();
        if !path.is_empty() && !path.contains(":memory:") && !std::path::Path::new(path).exists() {
            return Err(StoreError::InvalidInput(format!(
                "no database at {path}; create it with `agent-auth migrate`"
            )));
        }
    }
    let format = TokenFormat::new(prefix)
        .map_err(|e| StoreError::InvalidInput(format!("token prefix: {e}")))?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgStore::connect_pool(url).await?;
        let accounts = Arc::new(Accounts {
            pool: Pool::Postgres(pool.clone()),
        });
        accounts.migrate().await?;
        let config = StoreConfig::with_directory(format, accounts.clone());
        let store = PgStore::from_pool(pool, config).await?;
        Ok((Backend::Postgres(store), accounts))
    } else {
        let pool = SqliteStore::connect_pool(url).await?;
        let accounts = Arc::new(Accounts {
            pool: Pool::Sqlite(pool.clone()),
        });
        accounts.migrate().await?;
        let config = StoreConfig::with_directory(format, accounts.clone());
        let store = SqliteStore::from_pool(pool, config).await?;
        Ok((Backend::Sqlite(store), accounts))
    }
}
