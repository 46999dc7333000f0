//! What every store is configured with: token format, user directory, clock, coalescing
//! interval, lifetime policy.

use std::sync::Arc;
use std::time::Duration;

use super::model::AgentType;
use super::{StoreError, UserDirectory};
use crate::clock::{Clock, SystemClock};
use crate::token::TokenFormat;

/// Default and maximum lifetime of the tokens of one agent type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// Used when a token is minted without a lifetime; `None`: no expiry.
    pub default: Option<Duration>,
    /// No token may ask for more; `None`: no maximum.
    pub max: Option<Duration>,
}

/// Token lifetimes per [`AgentType`].
///
/// Defaults: autonomous and supervised agents get tokens without expiry unless one is asked for;
/// ephemeral agents get 15 minutes by default and at most an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifetimePolicy {
    autonomous: Lifetime,
    supervised: Lifetime,
    ephemeral: Lifetime,
}

impl Default for LifetimePolicy {
    fn default() -> Self {
        Self {
            autonomous: Lifetime::default(),
            supervised: Lifetime::default(),
            ephemeral: Lifetime {
                default: Some(Duration::from_secs(15 * 60)),
                max: Some(Duration::from_secs(60 * 60)),
            },
        }
    }
}

impl LifetimePolicy {
    /// Sets the lifetime rule of one agent type.
    pub fn with(mut self, agent_type: AgentType, lifetime: Lifetime) -> Self {
        *self.slot(agent_type) = lifetime;
        self
    }

    fn slot(&mut self, agent_type: AgentType) -> &mut Lifetime {
        match agent_type {
            AgentType::Autonomous => &mut self.autonomous,
            AgentType::Supervised => &mut self.supervised,
            AgentType::Ephemeral => &mut self.ephemeral,
        }
    }

    /// The rule of one agent type.
    pub fn get(&self, agent_type: AgentType) -> Lifetime {
        match agent_type {
            AgentType::Autonomous => self.autonomous,
            AgentType::Supervised => self.supervised,
            AgentType::Ephemeral => self.ephemeral,
        }
    }

    /// The lifetime a token gets: the requested one if allowed, else the default.
    pub(crate) fn lifetime_for(
        &self,
        agent_type: AgentType,
        requested: Option<Duration>,
    ) -> Result<Option<Duration>, StoreError> {
        let rule = self.get(agent_type);
        match requested {
            Some(ttl) if ttl.is_zero() => Err(StoreError::InvalidLifetime(
                "a token lifetime must be longer than zero".into(),
            )),
            Some(ttl) => match rule.max {
                Some(max) if ttl > max => Err(StoreError::InvalidLifetime(format!(
                    "{}s exceeds the maximum of {}s for {} agents",
                    ttl.as_secs(),
                    max.as_secs(),
                    agent_type.as_str()
                ))),
                _ => Ok(Some(ttl)),
            },
            None => Ok(rule.default.or(rule.max)),
        }
    }
}

/// The configuration shared by every store backend.
#[derive(Clone)]
pub struct StoreConfig {
    pub(crate) format: TokenFormat,
    pub(crate) directory: Arc<dyn UserDirectory>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) last_used_interval: Duration,
    pub(crate) lifetimes: LifetimePolicy,
    pub(crate) migrate: bool,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("format", &self.format)
            .field("last_used_interval", &self.last_used_interval)
            .field("lifetimes", &self.lifetimes)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// Tokens of `format`, owners looked up in `directory`; system clock, last-used written at
    /// most once a minute per token, default lifetimes, migrations applied on open.
    pub fn new(format: TokenFormat, directory: impl UserDirectory) -> Self {
        Self::with_directory(format, Arc::new(directory))
    }

    /// Like [`StoreConfig::new`] with a shared directory.
    pub fn with_directory(format: TokenFormat, directory: Arc<dyn UserDirectory>) -> Self {
        Self {
            format,
            directory,
            clock: Arc::new(SystemClock),
            last_used_interval: Duration::from_secs(60),
            lifetimes: LifetimePolicy::default(),
            migrate: true,
        }
    }

    /// Reads time from `clock` (tests of expiry).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Writes a token's last-used time at most once per `interval` (default 60 s).
    pub fn last_used_interval(mut self, interval: Duration) -> Self {
        self.last_used_interval = interval;
        self
    }

    /// Token lifetimes per agent type.
    pub fn lifetimes(mut self, lifetimes: LifetimePolicy) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Whether SQL stores apply their migrations when opened (default true). Operators who run
    /// migrations themselves turn this off; the store then touches no table when opened (it does
    /// not even connect), and `SqliteStore::schema_version` / `PgStore::schema_version` against
    /// `SCHEMA_VERSION` tell whether the schema is current.
    pub fn run_migrations(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// The token format.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }
}
