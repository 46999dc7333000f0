//! The SQL stores: [`SqliteStore`] (feature `sqlite`) and [`PgStore`] (feature `postgres`).
//!
//! Both keep their data in eight tables — `agent_auth_agents`, `agent_auth_tokens`,
//! `agent_auth_grants`, `agent_auth_audit_events`, `agent_auth_approvals`,
//! `agent_auth_change_epoch`, `agent_auth_changes` and `agent_auth_schema_migrations` — created
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
//!
//! # The change feed
//!
//! Both stores implement [`ChangeFeed`](crate::cache::ChangeFeed) for a verdict cache. The
//! database keeps it: triggers (migration 11) advance the one-row epoch
//! `agent_auth_change_epoch` by one per token or agent row changed in a way that can narrow
//! access (revoked, expired, completed, rotated, deleted, disabled, re-parented, its policy or
//! capabilities changed), whoever changed it — this library, the `agent-auth` CLI in another
//! process, another node, manual SQL — and log the row's kind and id in `agent_auth_changes`,
//! keeping the last 10,000. The request path (resolving, reserving and settling uses, last-used
//! times) logs nothing. On PostgreSQL the same triggers `NOTIFY` (see
//! [`PgStore`]'s `subscribe`); users of a host's own directory are logged by `user_changed`.
//!
//! # One implementation for both databases
//!
//! The stores are written once, generic over the database, in `Core`: one file per concern —
//! `resolve` (the request path: lookup, reserve, settle, last-used), `agents`, `tokens`,
//! `grants`, `audit`, `feed` (the change feed) — over `queries` (every statement, `$1, $2, …`
//! on both databases), `rows` (records read by column name) and `migrate` (versioned,
//! checksummed migrations). What differs between SQLite and PostgreSQL — the migrations, the
//! migration lock, the batched audit insert, logging a change and subscribing to notices — is
//! the small `Backend` trait, implemented in `sqlite.rs` and `postgres.rs` beside the public
//! store and its constructors; running a statement and reading a column is `Driver`,
//! implemented once for every backend, so the generic code names no sqlx bound.
//!
//! The public types stay concrete structs (`SqliteStore`, `PgStore`) holding an
//! `Arc<Core<Db>>`; the one macro left, `sql_store!`, only forwards the store traits of such
//! a struct to its core, since a trait cannot be implemented generically for two unrelated
//! structs.

mod agents;
mod approvals;
mod audit;
mod backend;
mod feed;
mod feed_error;
mod grants;
pub(crate) mod migrate;
mod pool;
mod queries;
mod resolve;
mod rows;
mod tokens;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use feed_error::ChangeFeedError;
pub use pool::PoolSettings;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::sync::Arc;

use time::OffsetDateTime;

use self::backend::Driver;
use self::migrate::MigrateError;
use self::resolve::LastUsedBuffer;
use crate::reason::ResolveError;
use crate::store::StoreConfig;
use crate::store::StoreError;
use crate::store::prepare::truncate;

/// A store on one database: everything the public store does, written once.
pub(crate) struct Core<B: Driver> {
    pool: sqlx::Pool<B>,
    /// One connection of its own for audit batches, so that writing the trail never takes a
    /// connection from requests resolving tokens.
    audit_pool: sqlx::Pool<B>,
    config: StoreConfig,
    last_used: LastUsedBuffer,
}

impl<B: Driver> std::fmt::Debug for Core<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(B::STORE)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<B: Driver> Core<B> {
    /// The core on `pool`, migrated unless the configuration says not to, its last-used writer
    /// running.
    pub(crate) async fn open(
        pool: sqlx::Pool<B>,
        config: StoreConfig,
    ) -> Result<Arc<Self>, StoreError> {
        if config.migrate {
            Self::migrate_pool(&pool).await?;
        }
        let audit_pool = sqlx::pool::PoolOptions::<B>::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with((*pool.connect_options()).clone());
        let core = Arc::new(Self {
            audit_pool,
            pool,
            config,
            last_used: LastUsedBuffer::default(),
        });
        resolve::spawn_last_used_writer(Arc::downgrade(&core));
        Ok(core)
    }

    pub(crate) async fn migrate_pool(pool: &sqlx::Pool<B>) -> Result<(), StoreError> {
        B::migrate(pool, &B::MIGRATIONS).await.map_err(|e| match e {
            MigrateError::Database(e) => store_error(e),
            e => StoreError::unavailable(e.to_string()),
        })
    }

    pub(crate) fn pool(&self) -> &sqlx::Pool<B> {
        &self.pool
    }

    /// The newest version of this build's migrations.
    pub(crate) const SCHEMA_VERSION: i64 = {
        let migrations = B::MIGRATIONS.migrations;
        migrations[migrations.len() - 1].version
    };

    /// The newest migration applied to the database behind `pool`, reading only: `None` if
    /// the migration table is missing or empty. `table_exists` is the database's query for
    /// one row if the table named `$1` exists.
    pub(crate) async fn schema_version(
        pool: &sqlx::Pool<B>,
        table_exists: &str,
    ) -> Result<Option<i64>, StoreError> {
        let table = B::MIGRATIONS.table;
        let found = backend::sql(table_exists)
            .bind(table)
            .fetch_optional(pool)
            .await
            .map_err(store_error)?;
        if found.is_none() {
            return Ok(None);
        }
        let select = format!("SELECT MAX(version) AS version FROM {table}");
        let row = backend::sql(&select)
            .fetch_optional(pool)
            .await
            .map_err(store_error)?;
        match row {
            Some(row) => B::opt_int(&row, "version").map_err(store_error),
            None => Ok(None),
        }
    }

    fn now(&self) -> OffsetDateTime {
        truncate(self.config.clock.now())
    }
}

/// A database error, as the management API reports it.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    // PostgreSQL cannot hold a NUL byte in text (SQLSTATE 22021): the input is bad, the
    // database is fine — a 422, not a 503 that pages an operator.
    if let sqlx::Error::Database(db) = &error {
        if db.code().as_deref() == Some("22021") {
            return StoreError::InvalidInput("text cannot contain a NUL byte".into());
        }
    }
    StoreError::Unavailable(Box::new(error))
}

/// A database error on the request path: never admission.
pub(crate) fn resolve_error(error: sqlx::Error) -> ResolveError {
    ResolveError::Unavailable(Box::new(error))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// The library's migrations for the database whose files are in `migrations/$dir/`: one list
/// of versions for both databases, so that neither can gain a version the other lacks.
macro_rules! library_migrations {
    ($dir:literal) => {{
        macro_rules! migration {
            ($version:literal, $description:literal, $file:literal) => {
                $crate::store::sql::migrate::Migration {
                    version: $version,
                    description: $description,
                    sql: include_str!(concat!("../../../migrations/", $dir, "/", $file)),
                }
            };
        }
        &[
            migration!(1, "agents and tokens", "0001_agents_and_tokens.sql"),
            migration!(2, "access grants", "0002_access_grants.sql"),
            migration!(3, "identities and audit", "0003_identities_and_audit.sql"),
            migration!(4, "uses in flight", "0004_uses_in_flight.sql"),
            migration!(
                5,
                "coalesced refusals, the trail indexed by time",
                "0005_coalesced_refusals.sql"
            ),
            migration!(6, "delegation and tasks", "0006_delegation_and_tasks.sql"),
            migration!(7, "approvals", "0007_approvals.sql"),
            migration!(
                8,
                "approvals listed by agent and status, counted by token",
                "0008_approvals_indexed.sql"
            ),
            migration!(
                9,
                "task completion recorded as state",
                "0009_task_completion.sql"
            ),
            migration!(
                10,
                "approvals record their task and orchestrator",
                "0010_approval_task.sql"
            ),
            migration!(
                11,
                "the change feed: an epoch and a log of narrowing changes",
                "0011_change_feed.sql"
            ),
        ]
    }};
}
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_imports)
)]
pub(crate) use library_migrations;

/// Implements the store traits and the shared inherent methods of a public store struct with
/// an `inner: Arc<Core<$Db>>` field, by forwarding to the core. No logic lives here. The
/// invoking module defines `Db` and `TABLE_EXISTS` (its database's query for one row if the
/// table named `$1` exists).
macro_rules! sql_store {
    ($Store:ident) => {
        use $crate::principal::{AgentId, Principal, TokenId, UserId};
        use $crate::reason::ResolveError;
        use $crate::resolver::{SettleFuture, TokenLookup, TokenResolver};
        use $crate::store::{
            AccessGrant, AccessRole, Agent, AgentStatus, AgentStore, GrantStore, ImportedToken,
            IssuedToken, NewAgent, NewToken, StoreConfig, StoreError, TokenInfo, TokenStore,
        };
        use $crate::token::TokenFormat;

        impl std::fmt::Debug for $Store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.fmt(f)
            }
        }

        impl $Store {
            async fn with_pool(
                pool: sqlx::Pool<Db>,
                config: StoreConfig,
            ) -> Result<Self, StoreError> {
                Ok(Self {
                    inner: Core::open(pool, config).await?,
                })
            }

            /// Applies the embedded migrations that are not applied yet, in one transaction.
            /// Refuses a database whose schema is newer than this build or whose applied
            /// migrations were edited.
            pub async fn migrate(&self) -> Result<(), StoreError> {
                Core::migrate_pool(self.inner.pool()).await
            }

            /// The newest schema version of this build: a database whose
            #[doc = concat!("[`", stringify!($Store), "::schema_version`]")]
            /// is lower needs
            #[doc = concat!("[`", stringify!($Store), "::migrate`]")]
            /// (or a store opened with migrations on).
            pub const SCHEMA_VERSION: i64 = Core::<Db>::SCHEMA_VERSION;

            /// The newest schema version applied to the database behind `pool`, without
            /// changing anything: `None` if this store's migrations were never applied there.
            /// A store opened with
            /// [`StoreConfig::run_migrations(false)`](crate::store::StoreConfig::run_migrations)
            /// needs this to equal
            #[doc = concat!("`", stringify!($Store), "::SCHEMA_VERSION`.")]
            pub async fn schema_version(pool: &sqlx::Pool<Db>) -> Result<Option<i64>, StoreError> {
                Core::<Db>::schema_version(pool, TABLE_EXISTS).await
            }

            /// The connection pool.
            pub fn pool(&self) -> &sqlx::Pool<Db> {
                self.inner.pool()
            }

            /// Writes the buffered last-used times now (the background task does this once per
            /// interval; call it before shutting down to lose nothing).
            pub async fn flush_last_used(&self) -> Result<(), StoreError> {
                self.inner.flush_last_used().await
            }

            /// How many last-used writes this store has made since it was opened.
            pub fn last_used_writes(&self) -> u64 {
                self.inner.last_used_writes()
            }

            /// Tells every node's verdict cache that the user `user` changed: call it when a
            /// user of your own [`UserDirectory`](crate::store::UserDirectory) is
            /// deactivated, removed or given another role, so that verdicts made with their
            /// old record (of agents they own, task tokens minted on their behalf) are dropped
            /// within the cache's bound. Logs a [`Change::User`](crate::cache::Change::User)
            /// in the store's change feed; returns its epoch. (Changes to tokens and agents are
            /// logged by the database itself, whoever makes them.)
            pub async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError> {
                self.inner.user_changed(user).await
            }
        }

        /// The change log kept by the database's triggers (migration 11): every narrowing
        /// change of a token or an agent, by any writer, and the users
        #[doc = concat!("[`", stringify!($Store), "::user_changed`]")]
        /// names.
        #[async_trait::async_trait]
        impl $crate::cache::ChangeFeed for $Store {
            async fn changes_since(
                &self,
                epoch: u64,
                limit: usize,
            ) -> Result<$crate::cache::Changes, $crate::reason::BoxError> {
                Ok(self.inner.changes_since(epoch, limit).await?)
            }

            async fn subscribe(
                &self,
            ) -> Result<Option<Box<dyn $crate::cache::Subscription>>, $crate::reason::BoxError>
            {
                Ok(<Db as super::backend::Backend>::subscribe(self.inner.pool()).await?)
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
                $crate::store::resolve::TokenRecords::settle(&*self.inner, token, spent)
            }

            fn touch(&self, principal: &Principal) {
                if let Some(token) = principal.token_id() {
                    let now = $crate::clock::Clock::unix_nanos(&*self.inner.config.clock);
                    $crate::store::resolve::TokenRecords::touch(&*self.inner, token, now);
                }
            }
        }

        #[async_trait::async_trait]
        impl AgentStore for $Store {
            fn clock(&self) -> &dyn $crate::clock::Clock {
                &*self.inner.config.clock
            }

            async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
                self.inner.create_agent(new).await
            }

            async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
                self.inner.agent(id).await
            }

            async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
                self.inner.agent_by_slug(slug).await
            }

            async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
                self.inner.list_agents().await
            }

            async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>, StoreError> {
                self.inner.children(parent).await
            }

            async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>, StoreError> {
                self.inner.agents_owned_by(owner).await
            }

            async fn set_agent_status(
                &self,
                id: &AgentId,
                status: AgentStatus,
            ) -> Result<Agent, StoreError> {
                self.inner.set_agent_status(id, status).await
            }

            async fn set_agent_policy(
                &self,
                id: &AgentId,
                policy: $crate::ceiling::Policy,
            ) -> Result<Agent, StoreError> {
                self.inner.set_agent_policy(id, policy).await
            }

            async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
                self.inner.delete_agent(id).await
            }
        }

        #[async_trait::async_trait]
        impl TokenStore for $Store {
            async fn create_token(
                &self,
                agent: &AgentId,
                new: NewToken,
            ) -> Result<IssuedToken, StoreError> {
                self.inner.create_token(agent, new).await
            }

            async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
                self.inner.list_tokens(agent).await
            }

            async fn revoke_token(
                &self,
                agent: &AgentId,
                token: &TokenId,
            ) -> Result<TokenInfo, StoreError> {
                self.inner.revoke_token(agent, token).await
            }

            async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
                self.inner.revoke_all_tokens(agent).await
            }

            async fn token(
                &self,
                agent: &AgentId,
                token: &TokenId,
            ) -> Result<Option<TokenInfo>, StoreError> {
                self.inner.token(agent, token).await
            }

            async fn import_token(
                &self,
                agent: &AgentId,
                token: ImportedToken,
            ) -> Result<TokenInfo, StoreError> {
                self.inner.import_token(agent, token).await
            }

            async fn rotate_token(
                &self,
                agent: &AgentId,
                token: &TokenId,
                grace: std::time::Duration,
            ) -> Result<IssuedToken, StoreError> {
                self.inner.rotate_token(agent, token, grace).await
            }

            async fn purge(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
                self.inner.purge(older_than).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::delegation::DelegationStore for $Store {
            fn store_config(&self) -> &StoreConfig {
                &self.inner.config
            }

            async fn inspect_token(
                &self,
                token: &TokenLookup<'_>,
            ) -> Result<$crate::store::resolve::Inspection, ResolveError> {
                $crate::store::resolve::inspect(&*self.inner, token).await
            }

            async fn revoke_token_tree(
                &self,
                agent: &AgentId,
                token: &TokenId,
            ) -> Result<usize, StoreError> {
                self.inner.revoke_token_tree(agent, token).await
            }

            async fn complete_task(
                &self,
                owner: &UserId,
                task_id: &str,
            ) -> Result<usize, StoreError> {
                self.inner.complete_task(owner, task_id).await
            }
        }

        #[async_trait::async_trait]
        impl GrantStore for $Store {
            async fn grant(
                &self,
                agent: &AgentId,
                user: &UserId,
                role: AccessRole,
            ) -> Result<AccessGrant, StoreError> {
                self.inner.grant(agent, user, role).await
            }

            async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
                self.inner.revoke_grant(agent, user).await
            }

            async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
                self.inner.grants(agent).await
            }

            async fn role_of(
                &self,
                agent: &AgentId,
                user: &UserId,
            ) -> Result<Option<AccessRole>, StoreError> {
                self.inner.role_of(agent, user).await
            }

            async fn agents_visible_to(&self, user: &UserId) -> Result<Vec<AgentId>, StoreError> {
                self.inner.agents_visible_to(user).await
            }
        }

        /// Approvals are kept in the `agent_auth_approvals` table.
        #[async_trait::async_trait]
        impl $crate::approval::ApprovalGate for $Store {
            async fn create_approval(
                &self,
                new: $crate::approval::NewApproval,
            ) -> Result<$crate::approval::Approval, StoreError> {
                self.inner.create_approval(new).await
            }

            async fn request_approval(
                &self,
                new: $crate::approval::NewApproval,
            ) -> Result<$crate::approval::Requested, StoreError> {
                self.inner.request_approval(new).await
            }

            async fn purge_approvals(
                &self,
                older_than: std::time::Duration,
            ) -> Result<usize, StoreError> {
                self.inner.purge_approvals(older_than).await
            }

            async fn approval(
                &self,
                id: &$crate::approval::ApprovalId,
            ) -> Result<Option<$crate::approval::Approval>, StoreError> {
                self.inner.approval(id).await
            }

            async fn list_approvals(
                &self,
                filter: &$crate::approval::ApprovalFilter,
            ) -> Result<Vec<$crate::approval::Approval>, StoreError> {
                self.inner.list_approvals(filter).await
            }

            async fn decide_approval(
                &self,
                id: &$crate::approval::ApprovalId,
                by: &UserId,
                decision: $crate::approval::Decision,
            ) -> Result<$crate::approval::Approval, StoreError> {
                self.inner.decide_approval(id, by, decision).await
            }

            async fn consume_approval(
                &self,
                binding: &$crate::approval::ApprovalBinding,
            ) -> Result<Option<$crate::approval::Approval>, StoreError> {
                self.inner.consume_approval(binding).await
            }
        }

        /// Audit events go to the `agent_auth_audit_events` table of the same database.
        #[async_trait::async_trait]
        impl $crate::audit::AuditSink for $Store {
            async fn write_batch(
                &self,
                events: &[$crate::audit::AuditEvent],
            ) -> Result<(), $crate::audit::AuditError> {
                self.inner.write_audit_batch(events).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::audit::AuditQuery for $Store {
            async fn events(
                &self,
                filter: &$crate::audit::AuditFilter,
            ) -> Result<Vec<$crate::audit::AuditEvent>, $crate::audit::AuditError> {
                self.inner.audit_events(filter).await
            }
        }
    };
}

use sql_store;
