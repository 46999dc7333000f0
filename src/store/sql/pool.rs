//! How a SQL store's connection pool waits on its database: a slow or hung database becomes
//! [`StoreError::Unavailable`] (and a request 503) within a bound, never a request that hangs.

use std::time::Duration;

use crate::error::StoreError;

/// Bounds on a SQL store's pool: how many connections, how long a caller waits for one, and
/// how long one statement may run (on SQLite: wait for another writer's lock). The defaults —
/// 3 s for a connection, 5 s for a statement — keep a request that finds the database hung
/// within a few seconds; the longest a request can wait is their sum.
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::store::PoolSettings;
///
/// let settings = PoolSettings::default()
///     .statement_timeout(Duration::from_secs(2))
///     .max_connections(32);
/// assert_eq!(settings.statement_timeout_value(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    max_connections: Option<u32>,
    acquire_timeout: Duration,
    statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

impl PoolSettings {
    /// At most `n` connections (default: 16 on PostgreSQL, 8 on SQLite).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// How long a caller waits for a free connection, and a new connection for the database to
    /// answer (default 3 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long one statement may run, waiting for locks included (default 5 s); on SQLite,
    /// how long a writer waits for another writer.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The statement timeout set.
    pub fn statement_timeout_value(&self) -> Duration {
        self.statement_timeout
    }

    pub(crate) fn connections_or(&self, default: u32) -> u32 {
        self.max_connections.unwrap_or(default)
    }

    pub(crate) fn acquire(&self) -> Duration {
        self.acquire_timeout
    }
}

/// The error of a database that could not be reached: where it was looked for and why, never
/// the password.
pub(crate) fn unreachable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("cannot connect to {what}: {error}"))
}
