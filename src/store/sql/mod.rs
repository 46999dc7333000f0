//! The SQL stores: [`SqliteStore`] (feature `sqlite`) and [`PgStore`] (feature `postgres`).
//!
//! Both keep their data in five tables — `agent_auth_agents`, `agent_auth_tokens`,
//! `agent_auth_grants`, `agent_auth_audit_events` and `agent_auth_schema_migrations` — created
//! by versioned migrations embedded in the crate and applied when the store is opened (turn that
//! off with [`StoreConfig::run_migrations`](crate::store::StoreConfig::run_migrations)). Applied
//! migrations are recorded in `agent_auth_schema_migrations` with a checksum, apart from any
//! migration table of the host application. Times are stored as Unix microseconds, capabilities
//! and policies as JSON text, tokens as the SHA-256 of the secret (unique index).
//!
//! Resolution goes through [`store::resolve`](crate::store::resolve): one indexed lookup (token
//! joined with its agent and parent) plus, for tokens with a use limit, one atomic
//! `UPDATE … WHERE operations_remaining > 0` that reserves a use and one that settles it, so a
//! limit of N admits exactly N successful requests across every node. Last-used times are
//! buffered in memory and written by a background task at most once per token per interval,
//! never on the request path. A database error is
//! [`ResolveError::Unavailable`](crate::ResolveError::Unavailable) and a row that does not parse
//! [`ResolveError::Corrupt`](crate::ResolveError::Corrupt): a token whose validity cannot be
//! established is never admitted.

pub(crate) mod migrate;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::ceiling::{CapabilitySet, Policy};
use crate::principal::TokenId;
use crate::reason::ResolveError;
use crate::store::StoreError;

/// Which SQL dialect the queries are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

/// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL.
fn placeholders(sql: &str, dialect: Dialect) -> String {
    if dialect == Dialect::Sqlite {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

const AGENT_COLUMNS: [&str; 13] = [
    "id",
    "slug",
    "owner",
    "agent_type",
    "status",
    "policy",
    "created_at",
    "expires_at",
    "parent_id",
    "scopes",
    "modes",
    "last_used_at",
    "last_rotated_at",
];
const TOKEN_COLUMNS: [&str; 15] = [
    "id",
    "agent_id",
    "display_prefix",
    "label",
    "capabilities",
    "created_at",
    "created_by",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "max_operations",
    "operations_remaining",
    "expires_on_completion",
    "task_id",
    "intent",
];

fn columns(names: &[&str], alias: Option<&str>) -> String {
    let qualified: Vec<String> = names
        .iter()
        .map(|name| match alias {
            Some(alias) => format!("{alias}.{name}"),
            None => (*name).to_owned(),
        })
        .collect();
    qualified.join(", ")
}

/// Every statement the stores run, in the dialect of one backend.
pub(crate) struct Queries {
    insert_agent: String,
    agent_by_id: String,
    agent_by_slug: String,
    list_agents: String,
    children: String,
    set_agent_status: String,
    delete_agent_tokens: String,
    delete_agent: String,
    delete_children_tokens: String,
    delete_children_grants: String,
    delete_children: String,
    touch_agent: String,
    mark_rotated: String,
    insert_token: String,
    list_tokens: String,
    get_token: String,
    revoke_token: String,
    revoke_all_tokens: String,
    resolve: String,
    reserve: String,
    spend: String,
    release: String,
    uses: String,
    touch: String,
    purge: String,
    retire_rotated: String,
    upsert_grant: String,
    delete_grant: String,
    list_grants: String,
    role_of: String,
    delete_agent_grants: String,
}

impl Queries {
    pub(crate) fn new(dialect: Dialect) -> Self {
        let agent = columns(&AGENT_COLUMNS, None);
        let token = columns(&TOKEN_COLUMNS, None);
        let q = |sql: String| placeholders(&sql, dialect);
        Self {
            insert_agent: q(format!(
                "INSERT INTO agent_auth_agents ({agent}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            agent_by_id: q(format!(
                "SELECT {agent} FROM agent_auth_agents WHERE id = ?"
            )),
            agent_by_slug: q(format!(
                "SELECT {agent} FROM agent_auth_agents WHERE slug = ?"
            )),
            list_agents: q(format!(
                "SELECT {agent} FROM agent_auth_agents ORDER BY slug"
            )),
            children: q(format!(
                "SELECT {agent} FROM agent_auth_agents WHERE parent_id = ? ORDER BY slug"
            )),
            set_agent_status: q(format!(
                "UPDATE agent_auth_agents SET status = ? WHERE id = ? RETURNING {agent}"
            )),
            delete_agent_tokens: q("DELETE FROM agent_auth_tokens WHERE agent_id = ?".into()),
            delete_agent: q("DELETE FROM agent_auth_agents WHERE id = ?".into()),
            delete_children_tokens: q("DELETE FROM agent_auth_tokens WHERE agent_id IN \
                 (SELECT id FROM agent_auth_agents WHERE parent_id = ?)"
                .into()),
            delete_children_grants: q("DELETE FROM agent_auth_grants WHERE agent_id IN \
                 (SELECT id FROM agent_auth_agents WHERE parent_id = ?)"
                .into()),
            delete_children: q("DELETE FROM agent_auth_agents WHERE parent_id = ?".into()),
            touch_agent: q("UPDATE agent_auth_agents SET last_used_at = ? \
                 WHERE id = (SELECT agent_id FROM agent_auth_tokens WHERE id = ?) \
                 AND (last_used_at IS NULL OR last_used_at < ?)"
                .into()),
            mark_rotated: q("UPDATE agent_auth_agents SET last_rotated_at = ? WHERE id = ?".into()),
            insert_token: q(format!(
                "INSERT INTO agent_auth_tokens (hash, {token}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            list_tokens: q(format!(
                "SELECT {token} FROM agent_auth_tokens WHERE agent_id = ? ORDER BY created_at, id"
            )),
            get_token: q(format!(
                "SELECT {token} FROM agent_auth_tokens WHERE agent_id = ? AND id = ?"
            )),
            revoke_token: q(format!(
                "UPDATE agent_auth_tokens SET revoked_at = COALESCE(revoked_at, ?) \
                 WHERE agent_id = ? AND id = ? RETURNING {token}"
            )),
            revoke_all_tokens: q("UPDATE agent_auth_tokens SET revoked_at = ? \
                 WHERE agent_id = ? AND revoked_at IS NULL"
                .into()),
            // The parent comes along for a child identity: its status, expiry and policy
            // bound the child.
            resolve: q(format!(
                "SELECT {}, {}, {}, t.operations_in_flight FROM agent_auth_tokens t \
                 JOIN agent_auth_agents a ON a.id = t.agent_id \
                 LEFT JOIN agent_auth_agents p ON p.id = a.parent_id WHERE t.hash = ?",
                columns(&TOKEN_COLUMNS, Some("t")),
                columns(&AGENT_COLUMNS, Some("a")),
                columns(&AGENT_COLUMNS, Some("p")),
            )),
            // Atomic: of concurrent requests for the last use, exactly one gets a row.
            reserve: q(
                "UPDATE agent_auth_tokens SET operations_remaining = operations_remaining - 1, \
                 operations_in_flight = operations_in_flight + 1 \
                 WHERE id = ? AND operations_remaining > 0 AND revoked_at IS NULL \
                 RETURNING operations_remaining"
                    .into(),
            ),
            // Columns on the right of SET hold the values before the update: the last use in
            // flight of a spent token completes its task.
            spend: q(
                "UPDATE agent_auth_tokens SET operations_in_flight = operations_in_flight - 1, \
                 expires_at = CASE WHEN expires_on_completion AND operations_remaining = 0 \
                 AND operations_in_flight = 1 THEN ? ELSE expires_at END \
                 WHERE id = ? AND operations_in_flight > 0"
                    .into(),
            ),
            release: q(
                "UPDATE agent_auth_tokens SET operations_in_flight = operations_in_flight - 1, \
                 operations_remaining = operations_remaining + 1 \
                 WHERE id = ? AND operations_in_flight > 0"
                    .into(),
            ),
            // Both counts from one row version: a release moves a use from one to the other.
            uses: q(
                "SELECT operations_remaining, operations_in_flight FROM agent_auth_tokens \
                 WHERE id = ?"
                    .into(),
            ),
            touch: q("UPDATE agent_auth_tokens SET last_used_at = ? \
                 WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"
                .into()),
            purge: q("DELETE FROM agent_auth_tokens \
                 WHERE (revoked_at IS NOT NULL AND revoked_at < ?) \
                 OR (expires_at IS NOT NULL AND expires_at < ?)"
                .into()),
            upsert_grant: q(
                "INSERT INTO agent_auth_grants (agent_id, user_id, role, granted_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (agent_id, user_id) \
                 DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at"
                    .into(),
            ),
            delete_grant: q(
                "DELETE FROM agent_auth_grants WHERE agent_id = ? AND user_id = ?".into(),
            ),
            list_grants: q("SELECT user_id, role, granted_at FROM agent_auth_grants \
                 WHERE agent_id = ? ORDER BY user_id"
                .into()),
            role_of: q(
                "SELECT role FROM agent_auth_grants WHERE agent_id = ? AND user_id = ?".into(),
            ),
            delete_agent_grants: q("DELETE FROM agent_auth_grants WHERE agent_id = ?".into()),
            // Only if still live: two concurrent rotations of one token cannot both succeed.
            retire_rotated: q(
                "UPDATE agent_auth_tokens SET expires_at = ?, revoked_at = ? \
                 WHERE agent_id = ? AND id = ? AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > ?)"
                    .into(),
            ),
        }
    }
}

/// `{"allow": [..] | null, "deny": [..]}`
pub(crate) fn policy_to_json(policy: &Policy) -> String {
    json!({
        "allow": policy.allowed().map(CapabilitySet::to_strings),
        "deny": policy.denied().to_strings(),
    })
    .to_string()
}

fn corrupt(what: &str) -> String {
    format!("stored {what} is not valid")
}

pub(crate) fn policy_from_json(text: &str) -> Result<Policy, String> {
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt("policy"))?;
    let set = |v: &Value| -> Result<CapabilitySet, String> {
        let items = v.as_array().ok_or_else(|| corrupt("policy"))?;
        let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
        CapabilitySet::parse(names.ok_or_else(|| corrupt("policy"))?).map_err(|e| e.to_string())
    };
    let allow = match &value["allow"] {
        Value::Null => None,
        v => Some(set(v)?),
    };
    let deny = match &value["deny"] {
        Value::Null => CapabilitySet::empty(),
        v => set(v)?,
    };
    Ok(allow
        .map_or_else(Policy::unrestricted, Policy::allow)
        .with_deny(deny))
}

/// A scope or mode set as a JSON array.
pub(crate) fn names_to_json(names: &std::collections::BTreeSet<String>) -> String {
    Value::from(names.iter().map(String::as_str).collect::<Vec<_>>()).to_string()
}

pub(crate) fn names_from_json(text: &str) -> Result<std::collections::BTreeSet<String>, String> {
    serde_json::from_str(text).map_err(|_| corrupt("scopes or modes"))
}

pub(crate) fn capabilities_to_json(set: &CapabilitySet) -> String {
    Value::from(set.to_strings()).to_string()
}

pub(crate) fn capabilities_from_json(text: &str) -> Result<CapabilitySet, String> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("capabilities"))?;
    CapabilitySet::parse(names).map_err(|e| e.to_string())
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string().into())
}

/// A database error, as the management API reports it.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// A database error on the request path: never admission.
pub(crate) fn resolve_error(error: sqlx::Error) -> ResolveError {
    ResolveError::Unavailable(Box::new(error))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Last-used times waiting to be written: at most one entry per token, flushed by a background
/// task once per interval, so a token costs at most one write per interval however busy it is.
#[derive(Default)]
pub(crate) struct LastUsedBuffer {
    pending: Mutex<HashMap<TokenId, i64>>,
    writes: AtomicU64,
}

impl LastUsedBuffer {
    pub(crate) fn record(&self, token: &TokenId, micros: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pending.entry(token.clone()).or_insert(micros);
        *slot = (*slot).max(micros);
    }

    pub(crate) fn take(&self) -> HashMap<TokenId, i64> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn count_writes(&self, n: u64) {
        self.writes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

/// Implements the stores for one backend. Written once; `$Db` picks the sqlx driver.
/// How long a request waits, polling, while every remaining use of its token is reserved by
/// requests in flight (on any node) that may still release one.
pub(crate) const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A write that finishes in the background if it is dropped unfinished (the request's future
/// was dropped): a settled use is never left to chance.
pub(crate) struct FinishOnDrop(pub(crate) Option<crate::resolver::SettleFuture>);

impl std::future::Future for FinishOnDrop {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(write) = self.0.as_mut() {
            std::task::ready!(write.as_mut().poll(cx));
            self.0 = None;
        }
        std::task::Poll::Ready(())
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let (Some(write), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(write);
        }
    }
}

/// A token row with its agent and the agent's parent, as one query returns them.
pub(crate) struct SqlRecord {
    info: crate::store::TokenInfo,
    agent: std::sync::Arc<crate::store::Agent>,
    parent: Option<std::sync::Arc<crate::store::Agent>>,
    uses: Option<crate::store::resolve::Uses>,
}

impl SqlRecord {
    pub(crate) fn new(
        info: crate::store::TokenInfo,
        agent: crate::store::Agent,
        parent: Option<crate::store::Agent>,
        in_flight: i64,
    ) -> Self {
        let uses = info
            .operations_remaining
            .map(|remaining| crate::store::resolve::Uses {
                remaining,
                in_flight: u64::try_from(in_flight).unwrap_or(0),
            });
        Self {
            info,
            agent: std::sync::Arc::new(agent),
            parent: parent.map(std::sync::Arc::new),
            uses,
        }
    }
}

impl crate::store::resolve::StoredToken for SqlRecord {
    fn info(&self) -> &crate::store::TokenInfo {
        &self.info
    }

    fn agent(&self) -> std::sync::Arc<crate::store::Agent> {
        self.agent.clone()
    }

    fn parent(&self) -> Option<std::sync::Arc<crate::store::Agent>> {
        self.parent.clone()
    }

    fn uses(&self) -> Option<crate::store::resolve::Uses> {
        self.uses
    }
}

macro_rules! sql_store {
    ($Store:ident, $Db:ty, $Row:ty, $dialect:expr, $migrations:expr, $lock:expr) => {
        use std::sync::{Arc, Weak};

        use sqlx::Row as _;
        use time::OffsetDateTime;

        use $crate::principal::{AgentId, Principal, TokenId};
        use $crate::reason::ResolveError;
        use $crate::resolver::SettleFuture;
        use $crate::resolver::{TokenLookup, TokenResolver};
        use $crate::store::prepare::{self, from_micros, micros, truncate};
        use $crate::store::resolve::{Reservation, StoredToken, TokenRecords};
        use $crate::store::sql::{FinishOnDrop, IN_FLIGHT_WAIT, SqlRecord};
        use $crate::store::sql::{
            LastUsedBuffer, Queries, capabilities_from_json, capabilities_to_json,
            is_unique_violation, names_from_json, names_to_json, policy_from_json, policy_to_json,
            resolve_error, store_error, unavailable,
        };
        use $crate::store::{
            Agent, AgentStatus, AgentStore, AgentType, ImportedToken, IssuedToken, NewAgent,
            NewToken, StoreConfig, StoreError, TokenInfo, TokenStore,
        };
        use $crate::token::TokenFormat;
        use $crate::token::TokenHash;

        struct Inner {
            pool: sqlx::Pool<$Db>,
            /// One connection of its own for audit batches, so that writing the trail never
            /// takes a connection from requests resolving tokens.
            audit_pool: sqlx::Pool<$Db>,
            config: StoreConfig,
            queries: Queries,
            last_used: LastUsedBuffer,
        }

        impl std::fmt::Debug for $Store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Store))
                    .field("config", &self.inner.config)
                    .finish_non_exhaustive()
            }
        }

        fn opt_time(micros: Option<i64>) -> Option<OffsetDateTime> {
            micros.map(from_micros)
        }

        fn count(value: Option<i64>) -> Option<u64> {
            value.map(|v| u64::try_from(v).unwrap_or(0))
        }

        fn agent_from_row(row: &$Row, at: usize) -> Result<Agent, String> {
            let get_err = |e: sqlx::Error| e.to_string();
            let agent_type: String = row.try_get(at + 3).map_err(get_err)?;
            let status: String = row.try_get(at + 4).map_err(get_err)?;
            let policy: String = row.try_get(at + 5).map_err(get_err)?;
            Ok(Agent {
                id: AgentId::new(row.try_get::<String, _>(at).map_err(get_err)?),
                slug: row.try_get::<String, _>(at + 1).map_err(get_err)?.into(),
                owner: row.try_get::<String, _>(at + 2).map_err(get_err)?.into(),
                agent_type: AgentType::parse(&agent_type)
                    .ok_or("stored agent type is not valid")?,
                status: AgentStatus::parse(&status).ok_or("stored agent status is not valid")?,
                policy: Arc::new(policy_from_json(&policy)?),
                created_at: from_micros(row.try_get(at + 6).map_err(get_err)?),
                expires_at: opt_time(row.try_get(at + 7).map_err(get_err)?),
                parent: row
                    .try_get::<Option<String>, _>(at + 8)
                    .map_err(get_err)?
                    .map(AgentId::new),
                scopes: names(row.try_get(at + 9).map_err(get_err)?)?,
                modes: names(row.try_get(at + 10).map_err(get_err)?)?,
                last_used_at: opt_time(row.try_get(at + 11).map_err(get_err)?),
                last_rotated_at: opt_time(row.try_get(at + 12).map_err(get_err)?),
            })
        }

        fn names(
            text: Option<String>,
        ) -> Result<Option<Arc<std::collections::BTreeSet<String>>>, String> {
            text.as_deref()
                .map(|t| names_from_json(t).map(Arc::new))
                .transpose()
        }

        /// The parent columns of a resolve row: `None` when the agent has no parent (or the
        /// parent row is gone).
        fn parent_from_row(row: &$Row, at: usize) -> Result<Option<Agent>, String> {
            let id: Option<String> = row.try_get(at).map_err(|e| e.to_string())?;
            match id {
                Some(_) => agent_from_row(row, at).map(Some),
                None => Ok(None),
            }
        }

        fn token_from_row(row: &$Row, at: usize) -> Result<TokenInfo, String> {
            let get_err = |e: sqlx::Error| e.to_string();
            let capabilities: Option<String> = row.try_get(at + 4).map_err(get_err)?;
            Ok(TokenInfo {
                id: TokenId::new(row.try_get::<String, _>(at).map_err(get_err)?),
                agent_id: AgentId::new(row.try_get::<String, _>(at + 1).map_err(get_err)?),
                display_prefix: row.try_get(at + 2).map_err(get_err)?,
                label: row.try_get(at + 3).map_err(get_err)?,
                capabilities: capabilities
                    .as_deref()
                    .map(capabilities_from_json)
                    .transpose()?,
                created_at: from_micros(row.try_get(at + 5).map_err(get_err)?),
                created_by: row
                    .try_get::<Option<String>, _>(at + 6)
                    .map_err(get_err)?
                    .map(Into::into),
                expires_at: opt_time(row.try_get(at + 7).map_err(get_err)?),
                last_used_at: opt_time(row.try_get(at + 8).map_err(get_err)?),
                revoked_at: opt_time(row.try_get(at + 9).map_err(get_err)?),
                max_operations: count(row.try_get(at + 10).map_err(get_err)?),
                operations_remaining: count(row.try_get(at + 11).map_err(get_err)?),
                expires_on_completion: row.try_get(at + 12).map_err(get_err)?,
                task_id: row.try_get(at + 13).map_err(get_err)?,
                intent: row.try_get(at + 14).map_err(get_err)?,
            })
        }

        fn agent_row(row: &$Row) -> Result<Agent, StoreError> {
            agent_from_row(row, 0).map_err(unavailable)
        }

        fn token_row(row: &$Row) -> Result<TokenInfo, StoreError> {
            token_from_row(row, 0).map_err(unavailable)
        }

        fn as_i64(n: Option<u64>) -> Option<i64> {
            n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        }

        impl $Store {
            async fn with_pool(
                pool: sqlx::Pool<$Db>,
                config: StoreConfig,
            ) -> Result<Self, StoreError> {
                if config.migrate {
                    Self::migrate_pool(&pool).await?;
                }
                let audit_pool = sqlx::pool::PoolOptions::<$Db>::new()
                    .max_connections(1)
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .connect_lazy_with((*pool.connect_options()).clone());
                let inner = Arc::new(Inner {
                    audit_pool,
                    pool,
                    config,
                    queries: Queries::new($dialect),
                    last_used: LastUsedBuffer::default(),
                });
                spawn_last_used_writer(Arc::downgrade(&inner));
                Ok(Self { inner })
            }

            /// Applies the embedded migrations that are not applied yet, in one transaction.
            /// Refuses a database whose schema is newer than this build or whose applied
            /// migrations were edited.
            pub async fn migrate(&self) -> Result<(), StoreError> {
                Self::migrate_pool(&self.inner.pool).await
            }

            async fn migrate_pool(pool: &sqlx::Pool<$Db>) -> Result<(), StoreError> {
                use $crate::store::sql::migrate::CREATE_MIGRATIONS_TABLE;
                let mut tx = pool.begin().await.map_err(store_error)?;
                let lock: Option<&str> = $lock;
                if let Some(lock) = lock {
                    sqlx::query(lock)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
                sqlx::raw_sql(CREATE_MIGRATIONS_TABLE)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let applied: Vec<(i64, String)> =
                    sqlx::query_as("SELECT version, checksum FROM agent_auth_schema_migrations")
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(store_error)?;
                let known: &[$crate::store::sql::migrate::Migration] = $migrations;
                for (version, checksum) in &applied {
                    match known.iter().find(|m| m.version == *version) {
                        None => {
                            return Err(unavailable(format!(
                                "the database schema (migration {version}) is newer than this build"
                            )));
                        }
                        Some(m) if m.checksum() != *checksum => {
                            return Err(unavailable(format!(
                                "migration {version} was changed after it was applied"
                            )));
                        }
                        Some(_) => {}
                    }
                }
                let now = micros(OffsetDateTime::now_utc());
                for migration in known
                    .iter()
                    .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
                {
                    sqlx::raw_sql(migration.sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                    sqlx::query(&$crate::store::sql::placeholders(
                        "INSERT INTO agent_auth_schema_migrations \
                         (version, description, checksum, applied_at) VALUES (?, ?, ?, ?)",
                        $dialect,
                    ))
                    .bind(migration.version)
                    .bind(migration.description)
                    .bind(migration.checksum())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                }
                tx.commit().await.map_err(store_error)
            }

            /// The connection pool.
            pub fn pool(&self) -> &sqlx::Pool<$Db> {
                &self.inner.pool
            }

            fn now(&self) -> OffsetDateTime {
                truncate(self.inner.config.clock.now())
            }

            /// Writes the buffered last-used times now (the background task does this once per
            /// interval; call it before shutting down to lose nothing).
            pub async fn flush_last_used(&self) -> Result<(), StoreError> {
                flush(&self.inner).await
            }

            /// How many last-used writes this store has made since it was opened.
            pub fn last_used_writes(&self) -> u64 {
                self.inner.last_used.writes()
            }

            async fn parent_of(&self, agent: &Agent) -> Result<Option<Agent>, StoreError> {
                match &agent.parent {
                    Some(parent) => AgentStore::agent(self, parent).await,
                    None => Ok(None),
                }
            }

            async fn agent_required(&self, id: &AgentId) -> Result<Agent, StoreError> {
                AgentStore::agent(self, id)
                    .await?
                    .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
            }
        }

        async fn flush(inner: &Inner) -> Result<(), StoreError> {
            let pending = inner.last_used.take();
            if pending.is_empty() {
                return Ok(());
            }
            let mut tx = inner.pool.begin().await.map_err(store_error)?;
            for (token, at) in &pending {
                for query in [&inner.queries.touch, &inner.queries.touch_agent] {
                    sqlx::query(query)
                        .bind(*at)
                        .bind(token.as_str())
                        .bind(*at)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
            }
            tx.commit().await.map_err(store_error)?;
            inner.last_used.count_writes(pending.len() as u64);
            Ok(())
        }

        /// Writes buffered last-used times once per interval until the store is dropped.
        fn spawn_last_used_writer(inner: Weak<Inner>) {
            let Some(period) = inner.upgrade().map(|i| i.config.last_used_interval) else {
                return;
            };
            let period = period.max(std::time::Duration::from_millis(10));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(inner) = inner.upgrade() else { break };
                    // A failed write keeps nothing back from requests; the next use records again.
                    let _ = flush(&inner).await;
                }
            });
        }

        #[async_trait::async_trait]
        impl TokenRecords for Inner {
            type Record = SqlRecord;

            fn config(&self) -> &StoreConfig {
                &self.config
            }

            async fn find(&self, hash: &TokenHash) -> Result<Option<SqlRecord>, ResolveError> {
                let row = sqlx::query(&self.queries.resolve)
                    .bind(hash.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(resolve_error)?;
                let Some(row) = row else { return Ok(None) };
                let info = token_from_row(&row, 0).map_err(ResolveError::corrupt)?;
                let at = $crate::store::sql::TOKEN_COLUMN_COUNT;
                let agent = agent_from_row(&row, at).map_err(ResolveError::corrupt)?;
                let at = at + $crate::store::sql::AGENT_COLUMN_COUNT;
                let parent = parent_from_row(&row, at).map_err(ResolveError::corrupt)?;
                let at = at + $crate::store::sql::AGENT_COLUMN_COUNT;
                let in_flight: i64 = row.try_get(at).map_err(|e| ResolveError::corrupt(e))?;
                Ok(Some(SqlRecord::new(info, agent, parent, in_flight)))
            }

            async fn reserve(&self, record: &SqlRecord) -> Result<Reservation, ResolveError> {
                let token = record.info().id.as_str();
                let give_up = std::time::Instant::now() + IN_FLIGHT_WAIT;
                let mut pause = std::time::Duration::from_millis(2);
                loop {
                    let reserved = sqlx::query(&self.queries.reserve)
                        .bind(token)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(resolve_error)?;
                    if reserved.is_some() {
                        return Ok(Reservation::Reserved);
                    }
                    // None left: refused, unless a use in flight may still be released.
                    let uses: Option<(Option<i64>, i64)> = sqlx::query_as(&self.queries.uses)
                        .bind(token)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(resolve_error)?;
                    match uses {
                        // Released since: try again at once.
                        Some((Some(remaining), _)) if remaining > 0 => continue,
                        Some((_, in_flight)) if in_flight > 0 => {}
                        _ => return Ok(Reservation::Exhausted),
                    }
                    if std::time::Instant::now() >= give_up {
                        return Ok(Reservation::Exhausted);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
            }

            fn settle(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
                let pool = self.pool.clone();
                let token = token.to_string();
                let now = micros(self.config.clock.now());
                let query = if spent {
                    self.queries.spend.clone()
                } else {
                    self.queries.release.clone()
                };
                let write = async move {
                    let statement = sqlx::query(&query);
                    let statement = if spent {
                        statement.bind(now)
                    } else {
                        statement
                    };
                    // A failed write leaves the use reserved, i.e. spent: the limit is never
                    // exceeded.
                    let _ = statement.bind(token).execute(&pool).await;
                };
                Some(Box::pin(FinishOnDrop(Some(Box::pin(write)))))
            }

            fn record_use(&self, record: &SqlRecord, now_nanos: i128) {
                self.last_used.record(
                    &record.info().id,
                    i64::try_from(now_nanos / 1_000).unwrap_or(i64::MAX),
                );
            }
        }

        #[async_trait::async_trait]
        impl TokenResolver for $Store {
            fn token_format(&self) -> &TokenFormat {
                &self.inner.config.format
            }

            async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
                $crate::store::resolve::resolve(&*self.inner, token).await
            }

            fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
                self.inner.settle(token, spent)
            }
        }

        #[async_trait::async_trait]
        impl AgentStore for $Store {
            fn clock(&self) -> &dyn $crate::clock::Clock {
                &*self.inner.config.clock
            }

            async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
                let parent = match &new.parent {
                    Some(id) => Some(self.agent_required(id).await?),
                    None => None,
                };
                let agent = prepare::prepare_agent(&self.inner.config, new, parent.as_ref())?;
                prepare::existing_user(&self.inner.config, &agent.owner).await?;
                let result = sqlx::query(&self.inner.queries.insert_agent)
                    .bind(agent.id.as_str())
                    .bind(&*agent.slug)
                    .bind(agent.owner.as_str())
                    .bind(agent.agent_type.as_str())
                    .bind(agent.status.as_str())
                    .bind(policy_to_json(&agent.policy))
                    .bind(micros(agent.created_at))
                    .bind(agent.expires_at.map(micros))
                    .bind(agent.parent.as_ref().map(|p| p.to_string()))
                    .bind(agent.scopes.as_deref().map(names_to_json))
                    .bind(agent.modes.as_deref().map(names_to_json))
                    .bind(agent.last_used_at.map(micros))
                    .bind(agent.last_rotated_at.map(micros))
                    .execute(&self.inner.pool)
                    .await;
                match result {
                    Ok(_) => Ok(agent),
                    Err(e) if is_unique_violation(&e) => {
                        Err(StoreError::DuplicateSlug(agent.slug.to_string()))
                    }
                    // The parent was deleted meanwhile.
                    Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                        Err(StoreError::UnknownAgent(
                            agent.parent.map(|p| p.to_string()).unwrap_or_default(),
                        ))
                    }
                    Err(e) => Err(store_error(e)),
                }
            }

            async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
                let row = sqlx::query(&self.inner.queries.agent_by_id)
                    .bind(id.as_str())
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(agent_row).transpose()
            }

            async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
                let row = sqlx::query(&self.inner.queries.agent_by_slug)
                    .bind(slug)
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(agent_row).transpose()
            }

            async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
                let rows = sqlx::query(&self.inner.queries.list_agents)
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                rows.iter().map(agent_row).collect()
            }

            async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>, StoreError> {
                let rows = sqlx::query(&self.inner.queries.children)
                    .bind(parent.as_str())
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                rows.iter().map(agent_row).collect()
            }

            async fn set_agent_status(
                &self,
                id: &AgentId,
                status: AgentStatus,
            ) -> Result<Agent, StoreError> {
                let row = sqlx::query(&self.inner.queries.set_agent_status)
                    .bind(status.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref()
                    .map(agent_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
            }

            async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
                let mut tx = self.inner.pool.begin().await.map_err(store_error)?;
                // Its children go with it: none may outlive the parent that bounds it.
                for query in [
                    &self.inner.queries.delete_children_grants,
                    &self.inner.queries.delete_children_tokens,
                    &self.inner.queries.delete_children,
                ] {
                    sqlx::query(query)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
                sqlx::query(&self.inner.queries.delete_agent_grants)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                sqlx::query(&self.inner.queries.delete_agent_tokens)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let deleted = sqlx::query(&self.inner.queries.delete_agent)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::UnknownAgent(id.to_string()));
                }
                tx.commit().await.map_err(store_error)
            }
        }

        impl $Store {
            async fn insert_token(
                &self,
                hash: &$crate::token::TokenHash,
                info: &TokenInfo,
            ) -> Result<(), StoreError> {
                insert_token_row(&self.inner.queries, &self.inner.pool, hash, info).await
            }
        }

        async fn insert_token_row<'c, E>(
            queries: &Queries,
            executor: E,
            hash: &$crate::token::TokenHash,
            info: &TokenInfo,
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'c, Database = $Db>,
        {
            let result = sqlx::query(&queries.insert_token)
                .bind(hash.as_bytes().as_slice())
                .bind(info.id.as_str())
                .bind(info.agent_id.as_str())
                .bind(&info.display_prefix)
                .bind(&info.label)
                .bind(info.capabilities.as_ref().map(capabilities_to_json))
                .bind(micros(info.created_at))
                .bind(info.created_by.as_ref().map(|u| u.to_string()))
                .bind(info.expires_at.map(micros))
                .bind(info.last_used_at.map(micros))
                .bind(info.revoked_at.map(micros))
                .bind(as_i64(info.max_operations))
                .bind(as_i64(info.operations_remaining))
                .bind(info.expires_on_completion)
                .bind(info.task_id.as_deref())
                .bind(info.intent.as_deref())
                .execute(executor)
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateToken),
                // The agent was deleted meanwhile: the foreign key refuses the row.
                Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    Err(StoreError::UnknownAgent(info.agent_id.to_string()))
                }
                Err(e) => Err(store_error(e)),
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::GrantStore for $Store {
            async fn grant(
                &self,
                agent: &AgentId,
                user: &$crate::principal::UserId,
                role: $crate::store::AccessRole,
            ) -> Result<$crate::store::AccessGrant, StoreError> {
                self.agent_required(agent).await?;
                prepare::existing_user(&self.inner.config, user).await?;
                let granted_at = self.now();
                sqlx::query(&self.inner.queries.upsert_grant)
                    .bind(agent.as_str())
                    .bind(user.as_str())
                    .bind(role.as_str())
                    .bind(micros(granted_at))
                    .execute(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                Ok($crate::store::AccessGrant {
                    agent_id: agent.clone(),
                    user_id: user.clone(),
                    role,
                    granted_at,
                })
            }

            async fn revoke_grant(
                &self,
                agent: &AgentId,
                user: &$crate::principal::UserId,
            ) -> Result<(), StoreError> {
                self.agent_required(agent).await?;
                let deleted = sqlx::query(&self.inner.queries.delete_grant)
                    .bind(agent.as_str())
                    .bind(user.as_str())
                    .execute(&self.inner.pool)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::UnknownGrant {
                        agent: agent.to_string(),
                        user: user.to_string(),
                    });
                }
                Ok(())
            }

            async fn grants(
                &self,
                agent: &AgentId,
            ) -> Result<Vec<$crate::store::AccessGrant>, StoreError> {
                self.agent_required(agent).await?;
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as(&self.inner.queries.list_grants)
                        .bind(agent.as_str())
                        .fetch_all(&self.inner.pool)
                        .await
                        .map_err(store_error)?;
                rows.into_iter()
                    .map(|(user, role, at)| {
                        Ok($crate::store::AccessGrant {
                            agent_id: agent.clone(),
                            user_id: user.into(),
                            role: $crate::store::AccessRole::parse(&role)
                                .ok_or_else(|| unavailable("stored role is not valid"))?,
                            granted_at: from_micros(at),
                        })
                    })
                    .collect()
            }

            async fn role_of(
                &self,
                agent: &AgentId,
                user: &$crate::principal::UserId,
            ) -> Result<Option<$crate::store::AccessRole>, StoreError> {
                let role: Option<String> = sqlx::query_scalar(&self.inner.queries.role_of)
                    .bind(agent.as_str())
                    .bind(user.as_str())
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                role.map(|r| {
                    $crate::store::AccessRole::parse(&r)
                        .ok_or_else(|| unavailable("stored role is not valid"))
                })
                .transpose()
            }
        }

        #[async_trait::async_trait]
        impl TokenStore for $Store {
            async fn create_token(
                &self,
                agent: &AgentId,
                new: NewToken,
            ) -> Result<IssuedToken, StoreError> {
                let agent = self.agent_required(agent).await?;
                let parent = self.parent_of(&agent).await?;
                let prepared =
                    prepare::prepare_token(&self.inner.config, &agent, parent.as_ref(), new)?;
                self.insert_token(&prepared.hash, &prepared.info).await?;
                Ok(IssuedToken {
                    token: prepared.raw,
                    info: prepared.info,
                })
            }

            async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
                self.agent_required(agent).await?;
                let rows = sqlx::query(&self.inner.queries.list_tokens)
                    .bind(agent.as_str())
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                rows.iter().map(token_row).collect()
            }

            async fn revoke_token(
                &self,
                agent: &AgentId,
                token: &TokenId,
            ) -> Result<TokenInfo, StoreError> {
                self.agent_required(agent).await?;
                let row = sqlx::query(&self.inner.queries.revoke_token)
                    .bind(micros(self.now()))
                    .bind(agent.as_str())
                    .bind(token.as_str())
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref()
                    .map(token_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::UnknownToken {
                        agent: agent.to_string(),
                        token: token.to_string(),
                    })
            }

            async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
                self.agent_required(agent).await?;
                let revoked = sqlx::query(&self.inner.queries.revoke_all_tokens)
                    .bind(micros(self.now()))
                    .bind(agent.as_str())
                    .execute(&self.inner.pool)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
            }

            async fn token(
                &self,
                agent: &AgentId,
                token: &TokenId,
            ) -> Result<Option<TokenInfo>, StoreError> {
                self.agent_required(agent).await?;
                let row = sqlx::query(&self.inner.queries.get_token)
                    .bind(agent.as_str())
                    .bind(token.as_str())
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(token_row).transpose()
            }

            async fn import_token(
                &self,
                agent: &AgentId,
                token: ImportedToken,
            ) -> Result<TokenInfo, StoreError> {
                let agent = self.agent_required(agent).await?;
                let parent = self.parent_of(&agent).await?;
                let (hash, info) =
                    prepare::prepare_import(&self.inner.config, &agent, parent.as_ref(), token)?;
                self.insert_token(&hash, &info).await?;
                Ok(info)
            }

            async fn rotate_token(
                &self,
                agent: &AgentId,
                token: &TokenId,
                grace: time::Duration,
            ) -> Result<IssuedToken, StoreError> {
                let agent_record = self.agent_required(agent).await?;
                let unknown = || StoreError::UnknownToken {
                    agent: agent.to_string(),
                    token: token.to_string(),
                };
                let old = TokenStore::token(self, agent, token)
                    .await?
                    .ok_or_else(unknown)?;
                let rotation =
                    prepare::prepare_rotation(&self.inner.config, &agent_record, &old, grace)?;
                let mut tx = self.inner.pool.begin().await.map_err(store_error)?;
                let retired = sqlx::query(&self.inner.queries.retire_rotated)
                    .bind(rotation.old_expires_at.map(micros))
                    .bind(rotation.old_revoked_at.map(micros))
                    .bind(agent.as_str())
                    .bind(token.as_str())
                    .bind(micros(self.now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                if retired == 0 {
                    return Err(StoreError::InvalidInput(
                        "only a live token can be rotated".into(),
                    ));
                }
                let new = rotation.new;
                insert_token_row(&self.inner.queries, &mut *tx, &new.hash, &new.info).await?;
                sqlx::query(&self.inner.queries.mark_rotated)
                    .bind(micros(new.info.created_at))
                    .bind(agent.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                Ok(IssuedToken {
                    token: new.raw,
                    info: new.info,
                })
            }

            async fn purge(&self, older_than: time::Duration) -> Result<usize, StoreError> {
                let cutoff = micros(self.now() - older_than);
                let purged = sqlx::query(&self.inner.queries.purge)
                    .bind(cutoff)
                    .bind(cutoff)
                    .execute(&self.inner.pool)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                Ok(usize::try_from(purged).unwrap_or(usize::MAX))
            }
        }
        /// Audit events go to the `agent_auth_audit_events` table of the same database.
        #[async_trait::async_trait]
        impl $crate::audit::AuditSink for $Store {
            async fn write_batch(
                &self,
                events: &[$crate::audit::AuditEvent],
            ) -> Result<(), $crate::audit::AuditError> {
                if events.is_empty() {
                    return Ok(());
                }
                let rows = events
                    .iter()
                    .map($crate::store::sql::audit_columns)
                    .collect();
                self.insert_audit_rows(rows)
                    .await
                    .map_err(|e| $crate::audit::AuditError::Unavailable(Box::new(e)))
            }
        }

        #[async_trait::async_trait]
        impl $crate::audit::AuditQuery for $Store {
            async fn events(
                &self,
                filter: &$crate::audit::AuditFilter,
            ) -> Result<Vec<$crate::audit::AuditEvent>, $crate::audit::AuditError> {
                let failed = |e: sqlx::Error| $crate::audit::AuditError::Unavailable(Box::new(e));
                let mut query = sqlx::QueryBuilder::<$Db>::new(format!(
                    "SELECT {} FROM agent_auth_audit_events WHERE 1 = 1",
                    $crate::store::sql::AUDIT_COLUMNS.join(", ")
                ));
                if !filter.identities.is_empty() {
                    let mut columns = vec!["identity"];
                    if filter.with_children {
                        columns.push("parent_identity");
                    }
                    query.push(" AND (");
                    for (n, column) in columns.iter().enumerate() {
                        if n > 0 {
                            query.push(" OR ");
                        }
                        query.push(format!("{column} IN ("));
                        let mut list = query.separated(", ");
                        for id in &filter.identities {
                            list.push_bind(id.to_string());
                        }
                        query.push(")");
                    }
                    query.push(")");
                }
                if let Some(credential) = &filter.credential {
                    query
                        .push(" AND credential = ")
                        .push_bind(credential.to_string());
                }
                if let Some(since) = filter.since {
                    query.push(" AND at >= ").push_bind(micros(since));
                }
                if let Some(until) = filter.until {
                    query.push(" AND at < ").push_bind(micros(until));
                }
                query.push(" ORDER BY seq");
                let rows = query
                    .build()
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(failed)?;
                rows.iter()
                    .map(|row| {
                        audit_event_from_row(row)
                            .map_err(|e| $crate::audit::AuditError::Unavailable(e.into()))
                    })
                    .collect()
            }
        }

        fn audit_event_from_row(row: &$Row) -> Result<$crate::audit::AuditEvent, String> {
            let get_err = |e: sqlx::Error| e.to_string();
            let text =
                |n: usize| -> Result<Option<String>, String> { row.try_get(n).map_err(get_err) };
            $crate::store::sql::AuditRow {
                at: row.try_get(0).map_err(get_err)?,
                identity: text(1)?,
                parent: text(2)?,
                credential: text(3)?,
                actor: text(4)?,
                delegation_chain: row.try_get(5).map_err(get_err)?,
                action: row.try_get(6).map_err(get_err)?,
                outcome: row.try_get(7).map_err(get_err)?,
                reason: text(8)?,
                method: text(9)?,
                path: text(10)?,
                status: row.try_get(11).map_err(get_err)?,
                task_id: text(12)?,
                detail: text(13)?,
            }
            .into_event()
        }
    };
}

pub(crate) use sql_store;

/// The columns of `agent_auth_audit_events`, in the order [`AuditRow`] holds them.
pub(crate) const AUDIT_COLUMNS: [&str; 14] = [
    "at",
    "identity",
    "parent_identity",
    "credential",
    "actor",
    "delegation_chain",
    "action",
    "outcome",
    "reason",
    "method",
    "path",
    "status",
    "task_id",
    "detail",
];

/// An audit event as stored: one row of `agent_auth_audit_events`.
pub(crate) struct AuditRow {
    pub(crate) at: i64,
    pub(crate) identity: Option<String>,
    pub(crate) parent: Option<String>,
    pub(crate) credential: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) delegation_chain: String,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) reason: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) status: Option<i32>,
    pub(crate) task_id: Option<String>,
    pub(crate) detail: Option<String>,
}

/// The row of `event`.
pub(crate) fn audit_columns(event: &crate::audit::AuditEvent) -> AuditRow {
    let id = |id: &Option<crate::principal::AgentId>| id.as_ref().map(ToString::to_string);
    let request = event.request.as_ref();
    AuditRow {
        at: crate::store::prepare::micros(event.at),
        identity: id(&event.identity),
        parent: id(&event.parent),
        credential: event.credential.as_ref().map(ToString::to_string),
        actor: event.actor.as_ref().map(ToString::to_string),
        delegation_chain: Value::from(
            event
                .delegation_chain
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>(),
        )
        .to_string(),
        action: event.action.as_str().to_owned(),
        outcome: event.outcome.as_str().to_owned(),
        reason: event.outcome.reason().map(|r| r.as_str().to_owned()),
        method: request.map(|r| r.method.clone()),
        path: request.map(|r| r.path.clone()),
        status: request.map(|r| i32::from(r.status)),
        task_id: event.task_id.clone(),
        detail: event.detail.clone(),
    }
}

impl AuditRow {
    /// The event this row stores; a row this build cannot read is an error, not a guess.
    pub(crate) fn into_event(self) -> Result<crate::audit::AuditEvent, String> {
        use crate::audit::{AuditAction, AuditEvent, Outcome, RequestSummary};
        let action = AuditAction::parse(&self.action).ok_or_else(|| corrupt("audit action"))?;
        let outcome = Outcome::parse(&self.outcome, self.reason.as_deref())
            .ok_or_else(|| corrupt("audit outcome"))?;
        let chain: Vec<String> = serde_json::from_str(&self.delegation_chain)
            .map_err(|_| corrupt("delegation chain"))?;
        let mut event =
            AuditEvent::new(crate::store::prepare::from_micros(self.at), action, outcome)
                .parent(self.parent.map(Into::into))
                .delegation_chain(chain.into_iter().map(Into::into).collect())
                .task_id(self.task_id);
        event.identity = self.identity.map(Into::into);
        event.credential = self.credential.map(Into::into);
        event.actor = self.actor.map(Into::into);
        event.detail = self.detail;
        if let (Some(method), Some(path), Some(status)) = (self.method, self.path, self.status) {
            event.request = Some(RequestSummary {
                method,
                path,
                status: u16::try_from(status).map_err(|_| corrupt("status"))?,
            });
        }
        Ok(event)
    }
}

/// How many columns a token occupies at the start of a resolve row.
pub(crate) const TOKEN_COLUMN_COUNT: usize = TOKEN_COLUMNS.len();

/// How many columns an agent occupies in a resolve row.
pub(crate) const AGENT_COLUMN_COUNT: usize = AGENT_COLUMNS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            placeholders("a = ? AND b = ?", Dialect::Postgres),
            "a = $1 AND b = $2"
        );
        assert_eq!(placeholders("a = ?", Dialect::Sqlite), "a = ?");
    }

    #[test]
    fn policies_round_trip_through_json() {
        let policies = [
            Policy::unrestricted(),
            Policy::nothing(),
            Policy::allow(CapabilitySet::parse(["posts:*", "a"]).unwrap())
                .with_deny(CapabilitySet::parse(["posts:delete"]).unwrap()),
        ];
        for policy in policies {
            assert_eq!(policy_from_json(&policy_to_json(&policy)).unwrap(), policy);
        }
    }

    #[test]
    fn corrupt_json_is_an_error_not_a_wider_policy() {
        assert!(policy_from_json("{").is_err());
        assert!(policy_from_json(r#"{"allow": "posts:*"}"#).is_err());
        assert!(capabilities_from_json("[1]").is_err());
    }
}
