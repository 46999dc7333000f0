//! What the one implementation needs from a database: [`Dialect`], the few facts that differ
//! between SQLite and PostgreSQL, implemented for each; and [`Driver`], running a
//! [`Statement`] and reading a column by name, implemented once for every backend.
//!
//! Statements are plain SQL text with `$1, $2, …` parameters, which sqlx binds by number on
//! SQLite as on PostgreSQL, each written as a `const` beside the code that runs it; one that
//! depends on a filter is put together with [`Statement::push`] and [`Statement::push_bind`].
//! Parameters are [`Arg`]s, so that the code of the stores names no sqlx trait bound: the
//! bounds sqlx needs to bind, run and decode on a generic database are stated once, on the
//! blanket implementation of [`Driver`]. (For that reason a filter's statement is not a
//! `sqlx::QueryBuilder`: its `push_bind` asks those bounds of the code that calls it.)

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use time::OffsetDateTime;

use super::audit_row::AuditRow;
use super::migrate::MigrationSet;
use crate::error::ChangeFeedError;

/// A subscription as the cache takes it.
pub(crate) type Subscribed = Box<dyn crate::cache::Subscription>;

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What differs between the databases.
pub(crate) trait Dialect: Database {
    /// The query for one row if the table named `$1` exists.
    const TABLE_EXISTS: &'static str;

    /// The library's migrations for this database.
    const MIGRATIONS: MigrationSet;

    /// How a transaction that asks for an approval begins (SQLite: `BEGIN IMMEDIATE`, the one
    /// writer from the first statement on), and the statement then run with the agent id as
    /// `$1` that serialises the requests of one agent (PostgreSQL: an advisory lock), so
    /// that spending an approved approval, looking for a standing one, counting the agent's
    /// pending ones and inserting one are one step.
    #[cfg(feature = "approval")]
    const APPROVAL_BEGIN: &'static str;
    /// See [`Dialect::APPROVAL_BEGIN`].
    #[cfg(feature = "approval")]
    const APPROVAL_LOCK: Option<&'static str>;

    /// The statement that serialises registrations under a cap, run first in their
    /// transaction (PostgreSQL: an advisory lock; SQLite needs none, its one writer counts
    /// and inserts in one statement), so that two cannot both count below the cap.
    #[cfg(feature = "oauth")]
    const REGISTRATION_LOCK: Option<&'static str>;

    /// Spends (`$1` now, `$2` the token) the use in flight of every use-limited link of the
    /// chain of a token: a request under a delegated token reserved one of each, root first.
    /// Where rows are locked (PostgreSQL), the chain's are locked in the order reservations
    /// lock them, the root first, so that a reservation, a spend and a release never wait for
    /// each other in a circle (a deadlock the database would break by failing one, which lost
    /// uses).
    const SPEND: &'static str;
    /// Releases (`$1` the token) the use in flight of every use-limited link of a token's
    /// chain, locking as [`Dialect::SPEND`] does.
    const RELEASE: &'static str;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Writes a batch of audit rows, the fastest way this database allows, in recording order.
    fn insert_audit_rows(
        pool: &Pool<Self>,
        rows: Vec<AuditRow>,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>>;

    /// Logs a change of `kind` (`token`, `agent`, `user`) to `id` as the triggers of
    /// migration 11 do, in one transaction: its epoch.
    fn log_change<'a>(
        pool: &'a Pool<Self>,
        kind: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<i64, sqlx::Error>>;

    /// A subscription to the notices of changes as they commit, if this database sends any.
    fn subscribe(pool: &Pool<Self>) -> BoxFuture<'_, Result<Option<Subscribed>, ChangeFeedError>>;

    /// Applies `set`, recording the migrations applied as applied `now`.
    fn migrate<'a>(
        pool: &'a Pool<Self>,
        set: &'a MigrationSet,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), super::migrate::MigrateError>>;
}

/// One value bound to a statement parameter.
#[derive(Debug)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    OwnedText(Option<String>),
    Int(Option<i64>),
    Flag(bool),
    Bytes(Option<&'a [u8]>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Self::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Self::Text(value)
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Self::OwnedText(Some(value))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        Self::OwnedText(value)
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for Arg<'_> {
    fn from(value: bool) -> Self {
        Self::Flag(value)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Self::Bytes(Some(value))
    }
}

impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(value: Option<&'a [u8]>) -> Self {
        Self::Bytes(value)
    }
}

/// A statement and its parameters, for any database.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    sql: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

/// The statement `sql`, parameters to be bound in order (`$1`, `$2`, …).
pub(crate) fn sql(sql: &str) -> Statement<'_> {
    Statement {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
    }
}

impl<'a> Statement<'a> {
    /// Binds the next parameter.
    pub(crate) fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends `text` to the statement.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.sql.to_mut().push_str(text);
        self
    }

    /// Appends the next parameter's placeholder and binds `arg` to it.
    pub(crate) fn push_bind(&mut self, arg: impl Into<Arg<'a>>) -> &mut Self {
        self.args.push(arg.into());
        let placeholder = format!("${}", self.args.len());
        self.push(&placeholder)
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) fn execute<E: On<'a>>(self, on: E) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        E::Db::execute(on.target(), self)
    }

    /// Runs the statement; its first row, if any.
    pub(crate) fn fetch_optional<E: On<'a>>(
        self,
        on: E,
    ) -> BoxFuture<'a, Result<Option<<E::Db as Database>::Row>, sqlx::Error>> {
        E::Db::fetch_optional(on.target(), self)
    }

    /// Runs the statement; every row.
    pub(crate) fn fetch_all<E: On<'a>>(
        self,
        on: E,
    ) -> BoxFuture<'a, Result<Vec<<E::Db as Database>::Row>, sqlx::Error>> {
        E::Db::fetch_all(on.target(), self)
    }
}

/// Where a statement runs: the pool, or the connection of a transaction.
pub(crate) enum Target<'a, B: Database> {
    Pool(&'a Pool<B>),
    Connection(&'a mut B::Connection),
}

/// What a statement can run on: `&pool` or `&mut transaction`.
pub(crate) trait On<'a> {
    type Db: Driver;
    fn target(self) -> Target<'a, Self::Db>;
}

impl<'a, B: Driver> On<'a> for &'a Pool<B> {
    type Db = B;
    fn target(self) -> Target<'a, B> {
        Target::Pool(self)
    }
}

impl<'a, B: Driver> On<'a> for &'a mut sqlx::Transaction<'_, B> {
    type Db = B;
    fn target(self) -> Target<'a, B> {
        Target::Connection(&mut **self)
    }
}

/// Running statements and reading columns by name: the same for every [`Dialect`].
pub(crate) trait Driver: Dialect {
    fn execute<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
    fn fetch_optional<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<Option<Self::Row>, sqlx::Error>>;
    fn fetch_all<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<Vec<Self::Row>, sqlx::Error>>;
    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn opt_int32(row: &Self::Row, column: &str) -> Result<Option<i32>, sqlx::Error>;
    fn flag(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error>;
    #[cfg(feature = "oauth")]
    fn opt_bytes(row: &Self::Row, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

impl<B> Driver for B
where
    B: Dialect,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'q> Option<String>: Encode<'q, B>,
    for<'q> Option<i64>: Encode<'q, B>,
    for<'q> &'q [u8]: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q [u8]>: Encode<'q, B>,
    for<'q> String: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> i64: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> i32: Decode<'q, B> + Type<B>,
    for<'q> bool: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> Vec<u8>: Decode<'q, B> + Type<B>,
    for<'c> &'c str: ColumnIndex<B::Row>,
{
    fn execute<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let query = query(&st.sql, st.args);
            let done = match on {
                Target::Pool(pool) => query.execute(pool).await?,
                Target::Connection(connection) => query.execute(connection).await?,
            };
            Ok(B::rows_affected(&done))
        })
    }

    fn fetch_optional<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<Option<Self::Row>, sqlx::Error>> {
        Box::pin(async move {
            let query = query(&st.sql, st.args);
            match on {
                Target::Pool(pool) => query.fetch_optional(pool).await,
                Target::Connection(connection) => query.fetch_optional(connection).await,
            }
        })
    }

    fn fetch_all<'a>(
        on: Target<'a, Self>,
        st: Statement<'a>,
    ) -> BoxFuture<'a, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(async move {
            let query = query(&st.sql, st.args);
            match on {
                Target::Pool(pool) => query.fetch_all(pool).await,
                Target::Connection(connection) => query.fetch_all(connection).await,
            }
        })
    }

    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error> {
        row.try_get(column)
    }

    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_int32(row: &Self::Row, column: &str) -> Result<Option<i32>, sqlx::Error> {
        row.try_get(column)
    }

    fn flag(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error> {
        row.try_get(column)
    }

    #[cfg(feature = "oauth")]
    fn opt_bytes(row: &Self::Row, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(column)
    }
}

/// The sqlx query of `sql`, `args` bound.
fn query<'s, B>(sql: &'s str, args: Vec<Arg<'s>>) -> sqlx::query::Query<'s, B, B::Arguments<'s>>
where
    B: Database,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'q> Option<String>: Encode<'q, B>,
    for<'q> Option<i64>: Encode<'q, B>,
    for<'q> &'q [u8]: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q [u8]>: Encode<'q, B>,
    for<'q> String: Encode<'q, B> + Type<B>,
    for<'q> i64: Encode<'q, B> + Type<B>,
    for<'q> bool: Encode<'q, B> + Type<B>,
{
    args.into_iter()
        .fold(sqlx::query(sql), |query, arg| match arg {
            Arg::Text(value) => query.bind(value),
            Arg::OwnedText(value) => query.bind(value),
            Arg::Int(value) => query.bind(value),
            Arg::Flag(value) => query.bind(value),
            Arg::Bytes(value) => query.bind(value),
        })
}
