//! The SQL backends: SQLite (feature `sqlite`) and PostgreSQL (feature `postgres`), written
//! once as [`SqlBackend`], generic over the database.
//!
//! Longer than most files: it holds the one `Backend` implementation for both databases, a
//! forwarding method per method of the contract; the statements live in the files beside it.
//!
//! Both keep their data in sixteen tables — `agent_auth_agents`, `agent_auth_tokens`,
//! `agent_auth_grants`, `agent_auth_audit_events`, `agent_auth_approvals`,
//! `agent_auth_change_epoch`, `agent_auth_changes`, the OAuth server's
//! `agent_auth_oauth_clients`, `agent_auth_oauth_codes`, `agent_auth_oauth_refresh_tokens`,
//! `agent_auth_oauth_connections` and `agent_auth_oauth_devices`, the callback receiver's
//! `agent_auth_callback_states` and `agent_auth_provider_tokens`, and
//! `agent_auth_schema_migrations` — created
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
//! times) logs nothing. On PostgreSQL the same triggers `NOTIFY` (see [`PgStore`]'s
//! `subscribe`); users of a host's own directory are logged by `user_changed`.
//!
//! # One implementation for both databases
//!
//! The backend is written once, generic over the database, in `Core`: one file per concern —
//! `resolve` (the request path: lookup, reserve, settle, last-used), `agents`, `tokens`,
//! `grants`, `approvals`, `oauth`, `audit`, `feed` (the change feed) — each with its statements as plain
//! SQL beside the code that runs them, over `rows` (records read by column name), `audit_row`
//! (an audit event as a row) and `migrate` (versioned, checksummed migrations). What differs
//! between SQLite and PostgreSQL — the migrations, the migration lock, settling a use down a
//! chain (locked rows or one writer), the batched audit insert, logging a change and
//! subscribing to notices — is the small `Dialect` trait, implemented in `sqlite.rs` and
//! `postgres.rs` beside the constructors; running a statement and reading a column is
//! `Driver`, implemented once for every database, so the generic code names no sqlx bound.
//! [`SqlBackend`] implements [`Backend`] by handing each step to the core.

mod agents;
#[cfg(feature = "approval")]
mod approvals;
mod audit;
mod audit_row;
#[cfg(feature = "callback")]
mod callback;
mod dialect;
mod error;
mod feed;
mod grants;
mod last_used;
pub mod migrate;
#[cfg(feature = "oauth")]
mod oauth;
mod pool;
mod resolve;
mod rows;
mod tokens;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use pool::PoolSettings;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::sync::Arc;

use time::OffsetDateTime;

use self::dialect::Driver;
use self::error::store_error;
use self::last_used::LastUsedBuffer;
use self::migrate::MigrateError;
use crate::audit::{AuditEvent, AuditFilter};
use crate::cache::{ChangeFeed, Changes, Subscription};
use crate::clock::Clock;
use crate::error::{AuditError, BoxError, ResolveError, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::SettleFuture;
use crate::store::backend::{
    AgentChange, AgentFilter, Backend, FoundToken, GrantFilter, OneTask, Reservation, Rotated,
    Rotation,
};
use crate::store::{AccessGrant, Agent, Store, StoreConfig, TokenInfo};
use crate::token::TokenHash;

#[cfg(feature = "approval")]
use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested,
};
#[cfg(feature = "callback")]
use crate::oauth::callback::{CallbackState, ProviderToken, StateTaken};
#[cfg(feature = "oauth")]
use crate::oauth::{
    AuthorizationCode, Client, Connection, DeviceAuthorization, DevicePoll, FamilyId, Polled,
    Redemption, RefreshRotation, RefreshToken,
};

/// A backend on one database: everything the store keeps, written once.
pub(crate) struct Core<B: sqlx::Database> {
    pool: sqlx::Pool<B>,
    /// One connection of its own for audit batches, so that writing the trail never takes a
    /// connection from requests resolving tokens.
    audit_pool: sqlx::Pool<B>,
    last_used: Arc<LastUsedBuffer>,
    last_used_interval: std::time::Duration,
}

impl<B: Driver> Core<B> {
    /// The core on `pool`, migrated unless the configuration says not to, its last-used writer
    /// running.
    async fn open(pool: sqlx::Pool<B>, config: &StoreConfig) -> Result<Arc<Self>, StoreError> {
        if config.migrate {
            Self::migrate_pool(&pool, config.clock.now()).await?;
        }
        let audit_pool = sqlx::pool::PoolOptions::<B>::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with((*pool.connect_options()).clone());
        let core = Arc::new(Self {
            audit_pool,
            pool,
            last_used: Arc::default(),
            last_used_interval: config.last_used_interval,
        });
        last_used::spawn_writer(
            core.pool.clone(),
            Arc::downgrade(&core.last_used),
            core.last_used_interval,
        );
        Ok(core)
    }

    /// Applies the library's migrations, recording them as applied `now`.
    async fn migrate_pool(pool: &sqlx::Pool<B>, now: OffsetDateTime) -> Result<(), StoreError> {
        B::migrate(pool, &B::MIGRATIONS, now)
            .await
            .map_err(|e| match e {
                MigrateError::Database(e) => store_error(e),
                e => StoreError::unavailable(e.to_string()),
            })
    }

    /// Writes the buffered last-used times now, in one transaction.
    pub(crate) async fn flush_last_used(&self) -> Result<(), StoreError> {
        last_used::flush(&self.pool, &self.last_used).await
    }

    /// How many last-used writes this store has made since it was opened.
    pub(crate) fn last_used_writes(&self) -> u64 {
        self.last_used.writes()
    }

    /// The newest version of this build's migrations.
    const SCHEMA_VERSION: i64 = {
        let migrations = B::MIGRATIONS.migrations;
        migrations[migrations.len() - 1].version
    };

    /// The newest migration applied to the database behind `pool`, reading only: `None` if
    /// the migration table is missing or empty.
    async fn schema_version(pool: &sqlx::Pool<B>) -> Result<Option<i64>, StoreError> {
        let table = B::MIGRATIONS.table;
        let found = dialect::sql(B::TABLE_EXISTS)
            .bind(table)
            .fetch_optional(pool)
            .await
            .map_err(store_error)?;
        if found.is_none() {
            return Ok(None);
        }
        let select = format!("SELECT MAX(version) AS version FROM {table}");
        let row = dialect::sql(&select)
            .fetch_optional(pool)
            .await
            .map_err(store_error)?;
        match row {
            Some(row) => B::opt_int(&row, "version").map_err(store_error),
            None => Ok(None),
        }
    }
}

/// Where a `SqliteStore` or a `PgStore` keeps its records: a pool of the database `DB`
/// (`sqlx::Sqlite` or `sqlx::Postgres`).
pub struct SqlBackend<DB: sqlx::Database> {
    core: Arc<Core<DB>>,
}

// `Driver` is sealed: only `sqlx::Sqlite` and `sqlx::Postgres` implement it, so these
// methods exist for exactly the two public stores.
#[allow(private_bounds)]
impl<DB: Driver> SqlBackend<DB> {
    async fn open(pool: sqlx::Pool<DB>, config: StoreConfig) -> Result<Store<Self>, StoreError> {
        let core = Core::open(pool, &config).await?;
        Ok(Store::from_backend(Self { core }, config))
    }
}

impl<DB: sqlx::Database> std::fmt::Debug for SqlBackend<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlBackend")
            .field("database", &DB::NAME)
            .finish_non_exhaustive()
    }
}

/// What both SQL stores add to [`Store`]: their migrations, pool and change feed.
#[allow(private_bounds)]
impl<DB: Driver> Store<SqlBackend<DB>> {
    /// Applies the embedded migrations that are not applied yet, in one transaction. Refuses a
    /// database whose schema is newer than this build or whose applied migrations were edited.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Core::migrate_pool(&self.backend().core.pool, self.clock().now()).await
    }

    /// The newest schema version of this build: a database whose `schema_version` is lower
    /// needs [`Store::migrate`] (or a store opened with migrations on).
    pub const SCHEMA_VERSION: i64 = Core::<DB>::SCHEMA_VERSION;

    /// The newest schema version applied to the database behind `pool`, without changing
    /// anything: `None` if this store's migrations were never applied there. A store opened
    /// with [`StoreConfig::run_migrations(false)`](crate::store::StoreConfig::run_migrations)
    /// needs this to equal `SCHEMA_VERSION`.
    pub async fn schema_version(pool: &sqlx::Pool<DB>) -> Result<Option<i64>, StoreError> {
        Core::<DB>::schema_version(pool).await
    }

    /// The connection pool.
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.backend().core.pool
    }

    /// Writes the buffered last-used times now (the background task does this once per
    /// interval; call it before shutting down to lose nothing).
    pub async fn flush_last_used(&self) -> Result<(), StoreError> {
        self.backend().core.flush_last_used().await
    }

    /// How many last-used writes this store has made since it was opened.
    pub fn last_used_writes(&self) -> u64 {
        self.backend().core.last_used_writes()
    }

    /// Tells every node's verdict cache that the user `user` changed: call it when a user of
    /// your own [`UserDirectory`](crate::store::UserDirectory) is deactivated, removed or
    /// given another role, so that verdicts made with their old record (of agents they own,
    /// task tokens minted on their behalf) are dropped within the cache's bound. Logs a
    /// [`Change::User`](crate::cache::Change::User) in the store's change feed; returns its
    /// epoch. (Changes to tokens and agents are logged by the database itself, whoever makes
    /// them.)
    pub async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError> {
        self.backend().core.user_changed(user).await
    }
}

/// The change log kept by the database's triggers (migration 11): every narrowing change of a
/// token or an agent, by any writer, and the users `user_changed` names.
#[async_trait::async_trait]
impl<DB: Driver> ChangeFeed for Store<SqlBackend<DB>> {
    async fn changes_since(&self, epoch: u64, limit: usize) -> Result<Changes, BoxError> {
        Ok(self.backend().core.changes_since(epoch, limit).await?)
    }

    async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>, BoxError> {
        Ok(DB::subscribe(&self.backend().core.pool).await?)
    }
}

#[async_trait::async_trait]
impl<DB: Driver> Backend for SqlBackend<DB> {
    type Record = FoundToken;

    async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        self.core.insert_agent(agent).await
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.core.agent(id).await
    }

    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        self.core.agent_by_slug(slug).await
    }

    async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        self.core.agents(filter).await
    }

    async fn update_agent(
        &self,
        id: &AgentId,
        change: &AgentChange,
    ) -> Result<Option<Agent>, StoreError> {
        self.core.update_agent(id, change).await
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        self.core.delete_agent(id).await
    }

    async fn insert_token(
        &self,
        hash: &TokenHash,
        token: &TokenInfo,
        one_task: Option<&OneTask>,
    ) -> Result<(), StoreError> {
        self.core.insert_token(hash, token, one_task).await
    }

    async fn tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        self.core.tokens(agent).await
    }

    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        self.core.token(agent, token).await
    }

    async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<Option<TokenInfo>, StoreError> {
        self.core.revoke_token(agent, token, at).await
    }

    async fn revoke_agent_tokens(
        &self,
        agent: &AgentId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.core.revoke_agent_tokens(agent, at).await
    }

    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.core.revoke_token_tree(agent, token, at).await
    }

    async fn complete_task(
        &self,
        owner: &UserId,
        task: &str,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.core.complete_task(owner, task, at).await
    }

    async fn rotate_token(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        self.core.rotate_token(rotation).await
    }

    async fn purge_tokens(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.core.purge_tokens(before).await
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<FoundToken>, ResolveError> {
        self.core.find(hash).await
    }

    async fn reserve(&self, record: &FoundToken) -> Result<Reservation, ResolveError> {
        self.core.reserve(record).await
    }

    async fn settled(&self, _record: &FoundToken, attempt: u32) {
        error::pause(attempt).await;
    }

    fn settle(&self, token: &TokenId, spent: bool, now: OffsetDateTime) -> Option<SettleFuture> {
        self.core.settle(token, spent, now)
    }

    fn touch(&self, token: &TokenId, now_nanos: i128) {
        self.core.touch(token, now_nanos);
    }

    async fn put_grant(&self, grant: &AccessGrant) -> Result<(), StoreError> {
        self.core.put_grant(grant).await
    }

    async fn delete_grant(&self, agent: &AgentId, user: &UserId) -> Result<bool, StoreError> {
        self.core.delete_grant(agent, user).await
    }

    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<AccessGrant>, StoreError> {
        self.core.grants(filter).await
    }

    #[cfg(feature = "oauth")]
    async fn insert_client(
        &self,
        client: &Client,
        limit: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.core.insert_client(client, limit, now).await
    }

    #[cfg(feature = "oauth")]
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.core.client(id).await
    }

    #[cfg(feature = "oauth")]
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.core.clients().await
    }

    #[cfg(feature = "oauth")]
    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        self.core.update_client(client).await
    }

    #[cfg(feature = "oauth")]
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        self.core.delete_client(id).await
    }

    #[cfg(feature = "oauth")]
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        self.core.insert_code(code).await
    }

    #[cfg(feature = "oauth")]
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Redemption, StoreError> {
        self.core.redeem_code(hash, family, now).await
    }

    #[cfg(feature = "oauth")]
    async fn code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        self.core.code(hash).await
    }

    #[cfg(feature = "oauth")]
    async fn insert_device(&self, device: &DeviceAuthorization) -> Result<(), StoreError> {
        self.core.insert_device(device).await
    }

    #[cfg(feature = "oauth")]
    async fn device(&self, hash: &TokenHash) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.core.device(hash).await
    }

    #[cfg(feature = "oauth")]
    async fn device_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.core.device_by_user_code(user_code).await
    }

    #[cfg(feature = "oauth")]
    async fn decide_device(
        &self,
        decided: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.core.decide_device(decided, now).await
    }

    #[cfg(feature = "oauth")]
    async fn poll_device(&self, poll: &DevicePoll) -> Result<Polled, StoreError> {
        self.core.poll_device(poll).await
    }

    #[cfg(feature = "oauth")]
    async fn insert_refresh(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.core.insert_refresh(token).await
    }

    #[cfg(feature = "oauth")]
    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError> {
        self.core.refresh_token(hash).await
    }

    #[cfg(feature = "oauth")]
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        self.core.rotate_refresh(old, new, now).await
    }

    #[cfg(feature = "oauth")]
    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        self.core.revoke_family(family, now).await
    }

    #[cfg(feature = "oauth")]
    async fn connection(
        &self,
        user: &UserId,
        client: &str,
    ) -> Result<Option<Connection>, StoreError> {
        self.core.connection(user, client).await
    }

    #[cfg(feature = "oauth")]
    async fn connect(&self, connection: &Connection) -> Result<Connection, StoreError> {
        self.core.connect(connection).await
    }

    #[cfg(feature = "oauth")]
    async fn connections(&self, user: Option<&UserId>) -> Result<Vec<Connection>, StoreError> {
        self.core.connections(user).await
    }

    #[cfg(feature = "oauth")]
    async fn delete_connection(&self, user: &UserId, client: &str) -> Result<bool, StoreError> {
        self.core.delete_connection(user, client).await
    }

    #[cfg(feature = "oauth")]
    async fn purge_oauth(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.core.purge_oauth(before).await
    }

    #[cfg(feature = "callback")]
    async fn insert_callback_state(&self, state: &CallbackState) -> Result<(), StoreError> {
        self.core.insert_callback_state(state).await
    }

    #[cfg(feature = "callback")]
    async fn take_callback_state(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<StateTaken, StoreError> {
        self.core.take_callback_state(hash, now).await
    }

    #[cfg(feature = "callback")]
    async fn purge_callback_states(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.core.purge_callback_states(before).await
    }

    #[cfg(feature = "callback")]
    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), StoreError> {
        self.core.put_provider_token(token).await
    }

    #[cfg(feature = "callback")]
    async fn provider_token(&self, id: &str) -> Result<Option<ProviderToken>, StoreError> {
        self.core.provider_token(id).await
    }

    #[cfg(feature = "callback")]
    async fn provider_tokens(
        &self,
        agent: Option<&AgentId>,
    ) -> Result<Vec<ProviderToken>, StoreError> {
        self.core.provider_tokens(agent).await
    }

    #[cfg(feature = "callback")]
    async fn delete_provider_token(&self, id: &str) -> Result<bool, StoreError> {
        self.core.delete_provider_token(id).await
    }

    #[cfg(feature = "approval")]
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.core.insert_approval(approval).await
    }

    #[cfg(feature = "approval")]
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        self.core.approval(id).await
    }

    #[cfg(feature = "approval")]
    async fn approvals(
        &self,
        filter: &ApprovalFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, StoreError> {
        self.core.approvals(filter, now).await
    }

    #[cfg(feature = "approval")]
    async fn request_approval(&self, request: &ApprovalRequest) -> Result<Requested, StoreError> {
        self.core.request_approval(request).await
    }

    #[cfg(feature = "approval")]
    async fn decide_approval(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.core.decide_approval(decided, from, now).await
    }

    #[cfg(feature = "approval")]
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Result<Option<Approval>, StoreError> {
        self.core.consume_approval(binding, now).await
    }

    #[cfg(feature = "approval")]
    async fn purge_approvals(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.core.purge_approvals(before).await
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.core.write_audit_batch(events).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        self.core.audit_events(filter).await
    }
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
            migration!(
                12,
                "the audit trail names agents and tokens",
                "0012_audit_agent_and_token.sql"
            ),
            migration!(
                13,
                "OAuth: clients, codes, refresh families, connections; token audience and client",
                "0013_oauth.sql"
            ),
            migration!(
                14,
                "OAuth: device authorizations (RFC 8628)",
                "0014_oauth_devices.sql"
            ),
            migration!(
                15,
                "the callback receiver: pending authorizations, sealed provider tokens",
                "0015_callback_receiver.sql"
            ),
            migration!(
                16,
                "indexes for scale: agents by owner, grants by user, ended tokens",
                "0016_indexes_for_scale.sql"
            ),
        ]
    }};
}
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_imports)
)]
pub(crate) use library_migrations;
