use std::str::FromStr;

use sqlx::postgres::PgPoolOptions;

use time::OffsetDateTime;

use super::SqlBackend;
use super::audit_row::AuditRow;
use super::dialect::{BoxFuture, Dialect, Subscribed};
use super::migrate::{MigrateError, MigrationSet};
use super::pool::{PoolSettings, unreachable};
use crate::error::ChangeFeedError;
use crate::error::StoreError;
use crate::store::{Store, StoreConfig};

/// The PostgreSQL store, shared by many nodes (feature `postgres`).
///
/// Every node opens its own `PgStore` on the same database; use limits are enforced by the
/// database, so they hold across nodes. Migrations take an advisory lock, so nodes starting
/// together apply them once.
///
/// Its [`ChangeFeed`](crate::cache::ChangeFeed) subscription is PostgreSQL's `LISTEN`, on a
/// connection of its own made as the pool makes them (application name `agent-auth change
/// feed`): every change any node, the CLI or manual SQL commits is a notice at once, on the
/// channel `agent_auth_changes` (for tables in `public`; `agent_auth_changes.<schema>` for
/// tables of another schema, so that stores in two schemas of one database keep apart). If the
/// connection is lost, the subscription's `next()` fails, then and ever after: notices sent
/// meanwhile are gone, and the cache subscribes again and catches up with `changes_since`.
/// sqlx does not promise that a wait for a notice may be dropped half way without losing one:
/// keep one `next()` running (in a task of its own) rather than racing it against a timer.
pub type PgStore = Store<SqlBackend<sqlx::Postgres>>;

impl Store<SqlBackend<sqlx::Postgres>> {
    /// Connects to `url` (`postgres://user@host/db`) with the default [`PoolSettings`] (16
    /// connections, 3 s to get one, 5 s per statement), and applies the migrations.
    pub async fn connect(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        Self::from_pool(Self::connect_pool(url).await?, config).await
    }

    /// The pool [`PgStore::connect`] uses for `url`, for sharing it with tables of your own
    /// before handing it to [`PgStore::from_pool`].
    pub async fn connect_pool(url: &str) -> Result<sqlx::PgPool, StoreError> {
        Self::connect_pool_with(url, PoolSettings::default()).await
    }

    /// A pool for `url` bounded by `settings`. One connection is made first, so that a wrong
    /// address, a refused connection or a failed sign-in is named now, with the host, port,
    /// database and user (never the password), rather than as a pool timeout.
    pub async fn connect_pool_with(
        url: &str,
        settings: PoolSettings,
    ) -> Result<sqlx::PgPool, StoreError> {
        use sqlx::ConnectOptions as _;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::invalid(format!("database URL: {e}")))?;
        let millis = settings
            .statement_timeout_value()
            .as_millis()
            .max(1)
            .to_string();
        let options = options.options([("statement_timeout", millis)]);
        let what = format!(
            "PostgreSQL at {}:{} (database {:?}, user {:?})",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username()),
            options.get_username()
        );
        match tokio::time::timeout(settings.acquire(), options.connect()).await {
            Err(_) => {
                return Err(unreachable(
                    &what,
                    format!("no answer within {:?}", settings.acquire()),
                ));
            }
            Ok(Err(error)) => return Err(unreachable(&what, error)),
            Ok(Ok(probe)) => drop(probe),
        }
        Ok(PgPoolOptions::new()
            .max_connections(settings.connections_or(16))
            .acquire_timeout(settings.acquire())
            .connect_lazy_with(options))
    }

    /// A store on an existing pool (migrations applied unless the configuration says not to).
    pub async fn from_pool(pool: sqlx::PgPool, config: StoreConfig) -> Result<Self, StoreError> {
        SqlBackend::open(pool, config).await
    }
}

impl Dialect for sqlx::Postgres {
    const TABLE_EXISTS: &'static str = "SELECT 1 WHERE to_regclass($1::text) IS NOT NULL";

    const MIGRATIONS: MigrationSet = MigrationSet {
        table: "agent_auth_schema_migrations",
        // Serialises migrations across nodes (an arbitrary constant: "agentaut" in ASCII).
        lock: Some(
            "SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(7018141354911790452)",
        ),
        migrations: super::library_migrations!("postgres"),
    };

    // The chain is `$2` and every token it was delegated from. `FOR UPDATE` takes the rows'
    // locks in the `ORDER BY`'s order, the root first (a delegated token's depth is one more
    // than its parent's), as a reservation takes them. Columns on the right of SET hold the
    // values before the update: the last use in flight of a spent token completes its task.
    const SPEND: &'static str = "WITH RECURSIVE chain(id, step) AS ( \
            SELECT CAST($2 AS TEXT), 0 \
            UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
            JOIN chain c ON d.id = c.id \
            WHERE d.delegation_parent IS NOT NULL AND c.step < 64), \
        locked AS MATERIALIZED (SELECT id FROM agent_auth_tokens \
            WHERE id IN (SELECT id FROM chain) ORDER BY delegation_depth FOR UPDATE) \
        UPDATE agent_auth_tokens \
        SET operations_in_flight = operations_in_flight - 1, \
            expires_at = CASE WHEN expires_on_completion AND operations_remaining = 0 \
                AND operations_in_flight = 1 THEN $1 ELSE expires_at END \
        WHERE operations_in_flight > 0 AND id IN (SELECT id FROM locked)";
    // The chain is `$1` and every token it was delegated from, locked as `SPEND` locks it.
    const RELEASE: &'static str = "WITH RECURSIVE chain(id, step) AS ( \
            SELECT CAST($1 AS TEXT), 0 \
            UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
            JOIN chain c ON d.id = c.id \
            WHERE d.delegation_parent IS NOT NULL AND c.step < 64), \
        locked AS MATERIALIZED (SELECT id FROM agent_auth_tokens \
            WHERE id IN (SELECT id FROM chain) ORDER BY delegation_depth FOR UPDATE) \
        UPDATE agent_auth_tokens \
        SET operations_in_flight = operations_in_flight - 1, \
            operations_remaining = operations_remaining + 1 \
        WHERE operations_in_flight > 0 AND id IN (SELECT id FROM locked)";

    #[cfg(feature = "approval")]
    const APPROVAL_BEGIN: &'static str = "BEGIN";
    // A transaction-scoped lock on the agent id's hash (seeded apart from the migrations'
    // lock): one agent's requests, of all its tokens, on every node wait for each other;
    // other agents' do not.
    #[cfg(feature = "approval")]
    const APPROVAL_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 7018141354911790452))");
    // One transaction-scoped lock for every registration under a cap, on every node (another
    // key than the migrations' and the agents' locks).
    #[cfg(feature = "oauth")]
    const REGISTRATION_LOCK: Option<&'static str> = Some(
        "SELECT pg_advisory_xact_lock(hashtextextended('agent_auth_oauth_registration', \
         7018141354911790452))",
    );

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// The whole batch in one round trip: one array per column, unnested into rows by one
    /// fixed (and so prepared once) statement whatever the batch size. `WITH ORDINALITY` keeps
    /// the rows, and so their `seq`, in recording order.
    fn insert_audit_rows(
        pool: &sqlx::PgPool,
        rows: Vec<AuditRow>,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let n = rows.len();
            let mut at = Vec::with_capacity(n);
            let mut agent = Vec::with_capacity(n);
            let mut parent = Vec::with_capacity(n);
            let mut token = Vec::with_capacity(n);
            let mut actor = Vec::with_capacity(n);
            let mut chain = Vec::with_capacity(n);
            let mut action = Vec::with_capacity(n);
            let mut outcome = Vec::with_capacity(n);
            let mut reason = Vec::with_capacity(n);
            let mut method = Vec::with_capacity(n);
            let mut path = Vec::with_capacity(n);
            let mut status = Vec::with_capacity(n);
            let mut task_id = Vec::with_capacity(n);
            let mut detail = Vec::with_capacity(n);
            let mut occurrences = Vec::with_capacity(n);
            for row in rows {
                at.push(row.at);
                agent.push(row.agent_id);
                parent.push(row.parent_agent_id);
                token.push(row.token_id);
                actor.push(row.actor);
                chain.push(row.delegation_chain);
                action.push(row.action);
                outcome.push(row.outcome);
                reason.push(row.reason);
                method.push(row.method);
                path.push(row.path);
                status.push(row.status);
                task_id.push(row.task_id);
                detail.push(row.detail);
                occurrences.push(row.occurrences);
            }
            sqlx::query(INSERT_AUDIT_ROWS)
                .bind(at)
                .bind(agent)
                .bind(parent)
                .bind(token)
                .bind(actor)
                .bind(chain)
                .bind(action)
                .bind(outcome)
                .bind(reason)
                .bind(method)
                .bind(path)
                .bind(status)
                .bind(task_id)
                .bind(detail)
                .bind(occurrences)
                .execute(pool)
                .await
                .map(drop)
        })
    }

    fn log_change<'a>(
        pool: &'a sqlx::PgPool,
        kind: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<i64, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT agent_auth_log_change($1, $2)")
                .bind(kind)
                .bind(id)
                .fetch_one(pool)
                .await
        })
    }

    /// `LISTEN` on the change log's channel, on a connection of its own.
    fn subscribe(
        pool: &sqlx::PgPool,
    ) -> BoxFuture<'_, Result<Option<Subscribed>, ChangeFeedError>> {
        Box::pin(async move {
            let subscription = super::feed::subscribe(pool).await?;
            Ok(Some(Box::new(subscription) as Subscribed))
        })
    }

    fn migrate<'a>(
        pool: &'a sqlx::PgPool,
        set: &'a MigrationSet,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), MigrateError>> {
        Box::pin(super::migrate::apply(pool, set, now))
    }
}

/// A batch of audit rows, one array per column in
/// [`AUDIT_COLUMNS`](super::audit_row::AUDIT_COLUMNS) order, unnested into rows in recording
/// order.
const INSERT_AUDIT_ROWS: &str = "INSERT INTO agent_auth_audit_events (at, agent_id, \
    parent_agent_id, token_id, actor, delegation_chain, action, outcome, reason, method, path, \
    status, task_id, detail, occurrences) \
    SELECT at, agent_id, parent_agent_id, token_id, actor, delegation_chain, action, outcome, \
    reason, method, path, status, task_id, detail, occurrences \
    FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[], \
    $14::text[], $15::bigint[]) \
    WITH ORDINALITY AS batch (at, agent_id, parent_agent_id, token_id, actor, delegation_chain, \
    action, outcome, reason, method, path, status, task_id, detail, occurrences, n) \
    ORDER BY n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_walks_the_deepest_chain_issued() {
        let limit = format!("c.step < {}", crate::store::MAX_DELEGATION_DEPTH_LIMIT);
        for statement in [
            <sqlx::Postgres as Dialect>::SPEND,
            <sqlx::Postgres as Dialect>::RELEASE,
        ] {
            assert!(statement.contains(&limit), "{statement}");
            assert!(statement.contains("ORDER BY delegation_depth FOR UPDATE"));
        }
    }

    #[test]
    fn an_audit_batch_fills_every_column() {
        use super::super::audit_row::{AUDIT_COLUMN_COUNT, AUDIT_COLUMNS};
        assert_eq!(INSERT_AUDIT_ROWS.matches(AUDIT_COLUMNS).count(), 3);
        let last = format!("${AUDIT_COLUMN_COUNT}::");
        assert!(INSERT_AUDIT_ROWS.contains(&last));
    }
}
