//! What is limited: a [`Rate`] (requests per fixed window), which [`LimitKind`] of limit, and
//! [`RateLimits`], the per-token and per-agent rates with their per-[`AgentType`] overrides.

use std::collections::HashMap;
use std::time::Duration;

use crate::principal::AgentType;

/// At most `requests` requests per `window`. Windows are fixed and aligned to Unix time (the
/// window of an instant is `floor(unix_ms / window_ms)`), so every node counts the same window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    requests: u64,
    window: Duration,
}

impl Rate {
    /// `requests` per `window`; a window is counted in whole milliseconds, at least one.
    /// `Rate::new(0, …)` refuses every request.
    pub fn new(requests: u64, window: Duration) -> Self {
        let millis = window.as_millis().clamp(1, u128::from(u64::MAX));
        Self {
            requests,
            window: Duration::from_millis(millis as u64),
        }
    }

    /// `requests` per second.
    pub fn per_second(requests: u64) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }

    /// `requests` per minute.
    pub fn per_minute(requests: u64) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }

    /// `requests` per hour.
    pub fn per_hour(requests: u64) -> Self {
        Self::new(requests, Duration::from_secs(3_600))
    }

    /// How many requests a window admits.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// How long a window lasts (whole milliseconds, at least one).
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl std::fmt::Display for Rate {
    /// `10 per 1s`, `5 per 250ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.window.as_millis();
        if millis % 1_000 == 0 {
            write!(f, "{} per {}s", self.requests, millis / 1_000)
        } else {
            write!(f, "{} per {millis}ms", self.requests)
        }
    }
}

/// Which limit: the one of a token, or the one of an agent (every token of it together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// Requests made with one token.
    Token,
    /// Requests made by one agent, with any of its tokens.
    Agent,
}

impl LimitKind {
    /// `token` or `agent`: the name in counter keys, response bodies and audit details.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Agent => "agent",
        }
    }
}

/// One limit that applied to a request: its kind and rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Whose limit.
    pub kind: LimitKind,
    /// How many requests per window.
    pub rate: Rate,
}

impl std::fmt::Display for Limit {
    /// `agent limit 10 per 1s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} limit {}", self.kind.as_str(), self.rate)
    }
}

/// The rates a [`RateLimitLayer`](super::RateLimitLayer) enforces: one per token and one per
/// agent, each optional, and overrides of either for an [`AgentType`] (an override wins over
/// the general rate for agents of that type).
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::limit::{Rate, RateLimits};
/// use tower_agent_auth::principal::AgentType;
///
/// let limits = RateLimits::new()
///     .per_token(Rate::per_minute(600))
///     .per_agent(Rate::per_second(20))
///     .per_agent_for(AgentType::Ephemeral, Rate::new(5, Duration::from_secs(10)));
/// assert_eq!(limits.agent_rate(AgentType::Autonomous), Some(Rate::per_second(20)));
/// assert_eq!(limits.agent_rate(AgentType::Ephemeral).unwrap().requests(), 5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    token: Option<Rate>,
    agent: Option<Rate>,
    token_by_type: HashMap<AgentType, Rate>,
    agent_by_type: HashMap<AgentType, Rate>,
}

impl RateLimits {
    /// No limit at all; add some with the other methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rate of each token.
    pub fn per_token(mut self, rate: Rate) -> Self {
        self.token = Some(rate);
        self
    }

    /// The rate of each agent, all its tokens together.
    pub fn per_agent(mut self, rate: Rate) -> Self {
        self.agent = Some(rate);
        self
    }

    /// The rate of each token of an agent of type `agent_type`, instead of
    /// [`per_token`](RateLimits::per_token)'s.
    pub fn per_token_for(mut self, agent_type: AgentType, rate: Rate) -> Self {
        self.token_by_type.insert(agent_type, rate);
        self
    }

    /// The rate of each agent of type `agent_type`, instead of
    /// [`per_agent`](RateLimits::per_agent)'s.
    pub fn per_agent_for(mut self, agent_type: AgentType, rate: Rate) -> Self {
        self.agent_by_type.insert(agent_type, rate);
        self
    }

    /// The rate a token of an agent of type `agent_type` is held to, if any.
    pub fn token_rate(&self, agent_type: AgentType) -> Option<Rate> {
        self.token_by_type.get(&agent_type).copied().or(self.token)
    }

    /// The rate an agent of type `agent_type` is held to, if any.
    pub fn agent_rate(&self, agent_type: AgentType) -> Option<Rate> {
        self.agent_by_type.get(&agent_type).copied().or(self.agent)
    }
}
