//! What every store is configured with: token format, user directory, clock, coalescing
//! interval, lifetime policy.

use std::sync::Arc;
use std::time::Duration;

use super::UserDirectory;
use super::model::AgentType;
use crate::clock::{Clock, SystemClock};
use crate::error::{InputError, StoreError};
use crate::token::TokenFormat;

/// Default and maximum lifetime of the tokens of one agent type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// Used when a token is minted without a lifetime; `None`: no expiry.
    pub default: Option<Duration>,
    /// A token asking for more gets this much; `None`: no maximum.
    pub max: Option<Duration>,
}

/// Token lifetimes per [`AgentType`].
///
/// Defaults: autonomous and supervised agents get tokens without expiry unless one is asked for;
/// ephemeral agents get 15 minutes by default and at most an hour, and serve one task: once a
/// live token of an ephemeral agent carries a task id, a token for another task is refused.
///
/// A token asking for more than its type's maximum is clamped to the maximum (one rule for
/// every type), so a client asking for "as long as possible" gets the longest allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifetimePolicy {
    autonomous: Lifetime,
    supervised: Lifetime,
    ephemeral: Lifetime,
    /// The types whose agents serve one task at a time.
    single_task: [bool; 3],
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
            single_task: [false, false, true],
        }
    }
}

impl LifetimePolicy {
    /// Sets the lifetime rule of one agent type.
    pub fn with(mut self, agent_type: AgentType, lifetime: Lifetime) -> Self {
        *self.slot(agent_type) = lifetime;
        self
    }

    /// Whether agents of `agent_type` serve one task: once a live token of such an agent
    /// carries a task id, minting one for another task is refused (default: ephemeral agents
    /// only).
    pub fn with_single_task(mut self, agent_type: AgentType, single: bool) -> Self {
        self.single_task[Self::index(agent_type)] = single;
        self
    }

    /// Whether agents of `agent_type` serve one task (see [`LifetimePolicy::with_single_task`]).
    pub fn single_task(&self, agent_type: AgentType) -> bool {
        self.single_task[Self::index(agent_type)]
    }

    fn index(agent_type: AgentType) -> usize {
        match agent_type {
            AgentType::Autonomous => 0,
            AgentType::Supervised => 1,
            AgentType::Ephemeral => 2,
        }
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

    /// The lifetime a token gets: the requested one, clamped to the type's maximum; without
    /// one, the default.
    pub(crate) fn lifetime_for(
        &self,
        agent_type: AgentType,
        requested: Option<Duration>,
    ) -> Result<Option<Duration>, StoreError> {
        let rule = self.get(agent_type);
        match requested {
            Some(ttl) if ttl.is_zero() => Err(StoreError::Input(InputError::InvalidLifetime(
                "a token lifetime must be longer than zero".into(),
            ))),
            Some(ttl) => Ok(Some(rule.max.map_or(ttl, |max| ttl.min(max)))),
            None => Ok(rule.default.or(rule.max)),
        }
    }
}

/// The default of [`StoreConfig::max_delegation_depth`].
pub const DEFAULT_MAX_DELEGATION_DEPTH: u32 = 4;

/// The most [`StoreConfig::max_delegation_depth`] accepts: a larger setting is capped to it.
/// Every store walks a token's delegation chain at most this many links up; a deeper token
/// would be issued and then refused at every request, so none is issued.
pub const MAX_DELEGATION_DEPTH_LIMIT: u32 = 64;

/// The configuration shared by every store backend.
#[derive(Clone)]
pub struct StoreConfig {
    pub(crate) format: TokenFormat,
    pub(crate) directory: Arc<dyn UserDirectory>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) last_used_interval: Duration,
    pub(crate) lifetimes: LifetimePolicy,
    pub(crate) migrate: bool,
    pub(crate) max_delegation_depth: u32,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("format", &self.format)
            .field("last_used_interval", &self.last_used_interval)
            .field("lifetimes", &self.lifetimes)
            .field("migrate", &self.migrate)
            .field("max_delegation_depth", &self.max_delegation_depth)
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
            max_delegation_depth: DEFAULT_MAX_DELEGATION_DEPTH,
        }
    }

    /// How deep a delegation chain may grow (default 4): a token minted directly has depth 0,
    /// one delegated from it 1, and so on; delegating past the maximum is refused. Capped to
    /// [`MAX_DELEGATION_DEPTH_LIMIT`] (64), the longest chain a store walks.
    pub fn max_delegation_depth(mut self, depth: u32) -> Self {
        self.max_delegation_depth = depth.min(MAX_DELEGATION_DEPTH_LIMIT);
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifetime_past_the_maximum_is_clamped_to_it() {
        let policy = LifetimePolicy::default();
        let hour = Duration::from_secs(3600);
        let asked = Some(Duration::from_secs(5 * 3600));
        assert_eq!(
            policy.lifetime_for(AgentType::Ephemeral, asked).unwrap(),
            Some(hour)
        );
        assert_eq!(
            policy.lifetime_for(AgentType::Autonomous, asked).unwrap(),
            asked,
            "no maximum, no clamp"
        );
        assert_eq!(
            policy.lifetime_for(AgentType::Ephemeral, None).unwrap(),
            Some(Duration::from_secs(15 * 60))
        );
        assert!(
            policy
                .lifetime_for(AgentType::Ephemeral, Some(Duration::ZERO))
                .is_err()
        );
    }

    #[test]
    fn the_delegation_depth_is_capped_to_the_longest_chain_walked() {
        let config = || {
            StoreConfig::new(
                crate::token::TokenFormat::new("acme").unwrap(),
                crate::store::MemoryUserDirectory::new(),
            )
        };
        assert_eq!(
            config().max_delegation_depth(1000).max_delegation_depth,
            MAX_DELEGATION_DEPTH_LIMIT
        );
        assert_eq!(config().max_delegation_depth(64).max_delegation_depth, 64);
        assert_eq!(config().max_delegation_depth(7).max_delegation_depth, 7);
    }

    #[test]
    fn only_ephemeral_agents_serve_one_task_unless_configured() {
        let policy = LifetimePolicy::default();
        assert!(policy.single_task(AgentType::Ephemeral));
        assert!(!policy.single_task(AgentType::Autonomous));
        let policy = policy
            .with_single_task(AgentType::Ephemeral, false)
            .with_single_task(AgentType::Supervised, true);
        assert!(!policy.single_task(AgentType::Ephemeral));
        assert!(policy.single_task(AgentType::Supervised));
    }
}
