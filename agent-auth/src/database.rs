//! Opening the database: the store (SQLite or PostgreSQL) and the reference server's own user
//! table, which is also the stores' `UserDirectory`.
//!
//! The user table is the binary's, not the library's: it comes from the binary's own
//! migrations (this package's `migrations/`, the same SQL on both databases but for the
//! triggers that log user changes in the library's change feed, in `sqlite/` and `postgres/`),
//! applied after the library's by the library's public migration machinery
//! ([`tower_agent_auth::store::migrate`]) and recorded in `agent_auth_server_migrations`, apart
//! from the library's `agent_auth_schema_migrations`. The browser sessions' table
//! (`agent_auth_sessions`, see `serve::sessions`) comes from the same migrations.

use std::sync::Arc;

use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::clock::{Clock, SystemClock};
use tower_agent_auth::error::{BoxError, NotFound, StoreError};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{
    AccountAdmin, AccountSummary, PasswordVerifier, hash_password_off_runtime,
    verify_password_off_runtime,
};
use tower_agent_auth::store::migrate::{self, Migration, MigrationSet};
use tower_agent_auth::store::{
    PgStore, PoolSettings, SqliteStore, StoreConfig, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;

/// The store, on either database.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs `$body` with `$store` bound to the store (a `Store<B>` of either backend), so that
/// code generic over `B: Backend` runs on both.
#[macro_export]
macro_rules! dispatch {
    ($database:expr, $store:ident => $body:expr) => {
        match $database {
            $crate::database::Database::Sqlite($store) => $body,
            $crate::database::Database::Postgres($store) => $body,
        }
    };
}

/// The database's connection pool, shared by the store, the user table and the sessions.
#[derive(Clone)]
pub enum Pool {
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

/// The binary's schema: versions recorded in a table of their own. `$dir` holds what differs
/// between the databases (triggers): `sqlite` or `postgres`.
macro_rules! server_migrations {
    ($dir:literal, $lock:expr) => {
        MigrationSet {
            table: "agent_auth_server_migrations",
            lock: $lock,
            migrations: &[
                Migration {
                    version: 1,
                    description: "users",
                    sql: include_str!("../migrations/0001_users.sql"),
                },
                Migration {
                    version: 2,
                    description: "user ids unique ignoring case",
                    sql: include_str!("../migrations/0002_user_ids_unique_ignoring_case.sql"),
                },
                // Needs the library's schema 11 (its change log): applied after the store's
                // migrations.
                Migration {
                    version: 3,
                    description: "user changes logged in the change feed",
                    sql: include_str!(concat!("../migrations/", $dir, "/0003_user_changes.sql")),
                },
                // The browser sessions' table, in the layout of tower-sessions-sqlx-store
                // (`serve::sessions`).
                Migration {
                    version: 4,
                    description: "browser sessions",
                    sql: include_str!(concat!("../migrations/", $dir, "/0004_sessions.sql")),
                },
            ],
        }
    };
}

const SQLITE_MIGRATIONS: MigrationSet = server_migrations!("sqlite", None);
/// Serialises servers starting together (another constant than the library's: "agentsrv").
const POSTGRES_MIGRATIONS: MigrationSet = server_migrations!(
    "postgres",
    Some("SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(7018690069354738294)")
);

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

/// The reference server's user ids: ASCII letters, digits and `._@+-` (names and e-mail
/// addresses), so that no two ids look alike or hide a character: no look-alike letters of other
/// scripts, no invisible or bidirectional-override characters, no spaces.
fn plain_user_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
}

impl Accounts {
    /// The pool the user table is reached through.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Applies the binary's migrations not applied yet.
    async fn migrate(&self) -> Result<(), StoreError> {
        // The binary's stores read the system clock, their configuration's default.
        let now = SystemClock.now();
        let applied = match &self.pool {
            Pool::Sqlite(pool) => migrate::apply(pool, &SQLITE_MIGRATIONS, now).await,
            Pool::Postgres(pool) => migrate::apply(pool, &POSTGRES_MIGRATIONS, now).await,
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
        if !plain_user_id(id) {
            return Err(StoreError::invalid(format!(
                "user id {id:?}: 1-100 of [A-Za-z0-9._@+-], starting with a letter or digit"
            )));
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
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::invalid(format!(
                    "a user {id:?} already exists (user ids differing only in case are refused)"
                )))
            }
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
                        .map_err(|_| StoreError::invalid("stored capabilities are not valid"))?,
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
            return Err(NotFound::User(id.to_owned()).into());
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
        // No stored id holds a NUL byte (PostgreSQL cannot store one): no such user, rather
        // than a database error.
        if id.as_str().contains('\0') {
            return Ok(None);
        }
        let Some((capabilities, active, password_hash)) =
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
        let mut record = UserRecord::new(id.clone(), role).with_active(active != 0);
        // The password hash is salted afresh on every change: its digest is a stamp that
        // changes with the password, so a reset ends the sessions signed in with the old one.
        if let Some(hash) = password_hash {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(hash.as_bytes());
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&digest[..8]);
            record = record.with_credential_stamp(u64::from_le_bytes(stamp));
        }
        Ok(Some(record))
    }
}

#[async_trait::async_trait]
impl PasswordVerifier for Accounts {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError> {
        // Every attempt costs one Argon2 verification, so timing does not tell which users exist.
        // Argon2 runs on the shared hashing pool (blocking threads, half the cores), never on
        // the runtime's workers: sign-ins cannot stall other requests.
        static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        // A name with a NUL byte names no one (and PostgreSQL refuses to look it up).
        let row = if user.contains('\0') {
            None
        } else {
            self.row(user).await?
        };
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

/// The users and account pages' view of the user table.
#[async_trait::async_trait]
impl AccountAdmin for Accounts {
    async fn list(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let accounts = Accounts::list(self).await?;
        accounts
            .into_iter()
            .map(|account| {
                let role = account
                    .capabilities
                    .map(CapabilitySet::parse)
                    .transpose()
                    .map_err(|_| StoreError::invalid("stored capabilities are not valid"))?;
                let created_at = time::OffsetDateTime::from_unix_timestamp(account.created_at)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                let mut summary = AccountSummary::new(account.id, role, created_at);
                summary.active = account.active;
                summary.has_password = account.has_password;
                Ok(summary)
            })
            .collect()
    }

    async fn add(
        &self,
        id: &str,
        role: Option<&CapabilitySet>,
        password: &str,
    ) -> Result<(), StoreError> {
        let hash = hash_password_off_runtime(password.to_owned())
            .await
            .map_err(StoreError::unavailable)?;
        Accounts::add(self, id, role, Some(hash)).await
    }

    async fn set_role(&self, id: &str, role: Option<&CapabilitySet>) -> Result<(), StoreError> {
        Accounts::set_role(self, id, role).await
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), StoreError> {
        Accounts::set_active(self, id, active).await
    }

    async fn set_password(&self, id: &str, password: &str) -> Result<(), StoreError> {
        // A fresh salt each time: the hash, and the credential stamp drawn from it, change.
        let hash = hash_password_off_runtime(password.to_owned())
            .await
            .map_err(StoreError::unavailable)?;
        Accounts::set_password(self, id, hash).await
    }
}

/// Opens the database at `url` (`postgres://…` or a SQLite path / `sqlite://` URL) and applies
/// the migrations only if asked to.
///
/// With `migrate` (`migrate` and `serve`) a missing SQLite file is created and the binary's
/// migrations (the user table) and the store's are applied. Without it nothing is created or
/// changed: a missing file, a database without the agent-auth schema, or one whose schema is
/// older or newer than this build's is refused, naming `agent-auth migrate` where that helps.
pub async fn open(
    url: &str,
    prefix: &str,
    migrate: bool,
    settings: PoolSettings,
) -> Result<(Database, Arc<Accounts>), Box<dyn std::error::Error>> {
    let format = TokenFormat::new(prefix)
        .map_err(|e| format!("--token-prefix {prefix:?} (or AGENT_AUTH_TOKEN_PREFIX): {e}"))?;
    let location = Location::parse(url)?;
    if let (false, Location::Sqlite(url)) = (migrate, &location) {
        // A mistyped path must not quietly become a new, empty database.
        if let Some(path) = Location::sqlite_path(url) {
            if !std::path::Path::new(path).exists() {
                return Err(
                    format!("no database at {path}; create it with `agent-auth migrate`").into(),
                );
            }
        }
    }
    // The same steps on either database: a pool, the user table (created or checked), the
    // store (its schema created or checked).
    macro_rules! open_on {
        ($Store:ident, $variant:ident, $url:expr) => {{
            let url = $url;
            let pool = $Store::connect_pool_with(url, settings).await?;
            let accounts = Arc::new(Accounts {
                pool: Pool::$variant(pool.clone()),
            });
            if !migrate {
                let applied = $Store::schema_version(&pool).await?;
                require_schema(url, "schema", applied, $Store::SCHEMA_VERSION)?;
                let users = accounts.schema_version().await?;
                require_schema(url, "user table", users, USERS_VERSION)?;
            }
            let config =
                StoreConfig::with_directory(format, accounts.clone()).run_migrations(migrate);
            let store = $Store::from_pool(pool, config).await?;
            // The store's migrations first: the user table's triggers log to its change feed.
            if migrate {
                accounts.migrate().await?;
            }
            Ok((Database::$variant(store), accounts))
        }};
    }
    match location {
        Location::Postgres(url) => open_on!(PgStore, Postgres, url),
        Location::Sqlite(url) => open_on!(SqliteStore, Sqlite, url),
    }
}

/// What `--database-url` names.
enum Location<'a> {
    /// A SQLite file: a path, `sqlite://PATH` or `sqlite:PATH`.
    Sqlite(&'a str),
    /// `postgres://…` or `postgresql://…`.
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    /// A URL of another scheme (`mysql://…`) is refused rather than taken for a file name.
    fn parse(url: &'a str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url));
        }
        if url.starts_with("sqlite:") {
            return Ok(Self::Sqlite(url));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme {
                return Err(format!(
                    "unsupported database URL scheme {scheme:?}: use a SQLite file (PATH or \
                     sqlite://PATH) or postgres://…"
                ));
            }
        }
        Ok(Self::Sqlite(url))
    }

    /// The SQLite file's path (`None` for an in-memory database).
    fn sqlite_path(url: &str) -> Option<&str> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default();
        (!path.is_empty() && !path.contains(":memory:")).then_some(path)
    }
}

/// `url` fit for an error message: without a password, and without the query (which may hold
/// one: `?password=…`).
fn shown(url: &str) -> String {
    let url = url.split('?').next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Refuses a database whose `what` schema (the library's, or this binary's user table) is
/// missing or not `current`, for commands that do not migrate.
fn require_schema(url: &str, what: &str, applied: Option<i64>, current: i64) -> Result<(), String> {
    let database = shown(url);
    match applied {
        None => Err(format!(
            "no agent-auth {what} in database {database}; create it with `agent-auth migrate`"
        )),
        Some(version) if version < current => Err(format!(
            "the agent-auth {what} in database {database} is older than this agent-auth \
             (version {version}, this build's is {current}); upgrade it with `agent-auth migrate`"
        )),
        Some(version) if version > current => Err(format!(
            "the agent-auth {what} in database {database} is newer than this agent-auth \
             (version {version}, this build's is {current}); use a newer agent-auth"
        )),
        Some(_) => Ok(()),
    }
}

// One list of versions on both databases, as the library's.
const _: () = assert!(SQLITE_MIGRATIONS.migrations.len() == POSTGRES_MIGRATIONS.migrations.len());

/// This binary's newest migration of its user table.
const USERS_VERSION: i64 = {
    let migrations = SQLITE_MIGRATIONS.migrations;
    migrations[migrations.len() - 1].version
};

impl Accounts {
    /// Sets `column` (a fixed name) of one user; [`NotFound::User`] if there is none.
    async fn update(
        &self,
        id: &str,
        column: &'static str,
        value: Option<String>,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE agent_auth_users SET {column} = $1 WHERE id = $2");
        let changed = on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(value)
                .bind(id)
                .execute(pool)
                .await
                .map_err(unavailable)?
                .rows_affected()
        });
        if changed == 0 {
            return Err(NotFound::User(id.to_owned()).into());
        }
        Ok(())
    }

    /// Sets (or replaces) a user's password hash.
    pub async fn set_password(&self, id: &str, password_hash: String) -> Result<(), StoreError> {
        self.update(id, "password_hash", Some(password_hash)).await
    }

    /// Sets a user's role: these capabilities, or unrestricted (`None`).
    pub async fn set_role(
        &self,
        id: &str,
        capabilities: Option<&CapabilitySet>,
    ) -> Result<(), StoreError> {
        let capabilities =
            capabilities.map(|c| serde_json::to_string(&c.to_strings()).unwrap_or_default());
        self.update(id, "capabilities", capabilities).await
    }

    /// Deletes a user (the caller checks first that they own no agents and hold no grants).
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM agent_auth_users WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(unavailable)?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(NotFound::User(id.to_owned()).into());
        }
        Ok(())
    }

    /// The newest version of the binary's migrations applied, reading only (`None`: never).
    async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let table = SQLITE_MIGRATIONS.table;
        let select = format!("SELECT MAX(version) FROM {table}");
        let exists: Option<i32> = on_pool!(self, pool => {
            let sql = match self.pool {
                Pool::Sqlite(_) => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
                Pool::Postgres(_) => "SELECT 1 WHERE to_regclass($1::text) IS NOT NULL",
            };
            sqlx::query_scalar(sql)
                .bind(table)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?
        });
        if exists.is_none() {
            return Ok(None);
        }
        on_pool!(self, pool => {
            sqlx::query_scalar(&select)
                .fetch_one(pool)
                .await
                .map_err(unavailable)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Location, shown};

    #[test]
    fn database_names_in_errors_hold_no_password() {
        assert_eq!(
            shown("postgres://app:s3cret@db.example:5432/agents?sslmode=require&password=x"),
            "postgres://app@db.example:5432/agents"
        );
        assert_eq!(
            shown("postgres://db.example/agents"),
            "postgres://db.example/agents"
        );
        assert_eq!(
            shown("sqlite:///tmp/agent-auth.db"),
            "sqlite:///tmp/agent-auth.db"
        );
        assert_eq!(shown("agent-auth.db"), "agent-auth.db");
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_databases() {
        for url in [
            "agent-auth.db",
            "sqlite://a.db",
            "sqlite::memory:",
            "./dir:x/a.db",
        ] {
            assert!(
                matches!(Location::parse(url), Ok(Location::Sqlite(_))),
                "{url}"
            );
        }
        for url in ["postgres://h/db", "postgresql://h/db"] {
            assert!(
                matches!(Location::parse(url), Ok(Location::Postgres(_))),
                "{url}"
            );
        }
        for url in ["mysql://h/db", "mariadb://h/db", "http://h/db"] {
            assert!(Location::parse(url).is_err(), "{url}");
        }
    }
}
