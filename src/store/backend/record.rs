//! What the request path reads: a token with its agent, parent and chain, and its uses.

use std::sync::Arc;

use crate::ceiling::Policy;
use crate::store::model::{Agent, TokenInfo};

/// A use-limited token's uses at the moment its record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses {
    /// Uses neither spent nor reserved.
    pub remaining: u64,
    /// Uses reserved by requests in flight, not settled yet.
    pub in_flight: u64,
}

/// The outcome of reserving a use of a use-limited token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// One use is reserved for this request.
    Reserved,
    /// No use is left, and none is in flight.
    Exhausted,
    /// No use could be reserved, but one may still come back (every use left is reserved by
    /// requests in flight, or the record changed since it was read): the pipeline waits with
    /// [`Backend::settled`](super::Backend::settled) and resolves the token again, all its checks included.
    InFlight,
}

/// What a backend found for a token hash: the token, its agent and the agent's parent, and for
/// a delegated token the chain it was delegated through. [`FoundToken`] is a ready-made one;
/// a backend may return its own type (the in-memory backend shares its entries rather than
/// copying them).
pub trait StoredToken: Send + Sync {
    /// The token's record.
    fn info(&self) -> &TokenInfo;
    /// The agent the token is stored for.
    fn agent(&self) -> Arc<Agent>;
    /// The agent's parent, for a thread-scoped child; `None` also when the parent is gone.
    fn parent(&self) -> Option<Arc<Agent>>;
    /// The token's own capabilities as a policy layer, if it narrows.
    fn capabilities(&self) -> Option<Arc<Policy>> {
        self.info()
            .capabilities
            .clone()
            .map(|caps| Arc::new(Policy::allow(caps)))
    }
    /// The uses of a use-limited token; `None` for a token without a limit.
    fn uses(&self) -> Option<Uses>;
    /// Unix nanoseconds at which an `expires_on_completion` token's last use was spent, for a
    /// backend that does not fold it into [`TokenInfo::expires_at`].
    fn completed_at(&self) -> Option<i128> {
        None
    }
    /// For a delegated token, the token `step` links up its chain, root first: step 0 is the
    /// token minted directly, step `delegation_depth - 1` the one this token was delegated
    /// from; each with its agent, the agent's parent and its uses, read with this record. `None`
    /// for a step that is gone. The default has no chain: a backend that does not keep chains
    /// never admits a delegated token (the pipeline refuses a token whose chain is shorter than
    /// its [`delegation_depth`](TokenInfo::delegation_depth)).
    fn delegator(&self, step: usize) -> Option<&dyn StoredToken> {
        let _ = step;
        None
    }
    /// For a task token minted by an orchestrator ([`TokenInfo::orchestrator`]), or one
    /// delegated from such a token (it inherits the field), that agent as stored now; `None`
    /// also when it is gone (and then the token is refused). Asked of the record the request
    /// presented, never of a [`delegator`](StoredToken::delegator) link.
    fn orchestrator(&self) -> Option<Arc<Agent>> {
        None
    }
}

impl<T: StoredToken + ?Sized> StoredToken for Arc<T> {
    fn info(&self) -> &TokenInfo {
        (**self).info()
    }
    fn agent(&self) -> Arc<Agent> {
        (**self).agent()
    }
    fn parent(&self) -> Option<Arc<Agent>> {
        (**self).parent()
    }
    fn capabilities(&self) -> Option<Arc<Policy>> {
        (**self).capabilities()
    }
    fn uses(&self) -> Option<Uses> {
        (**self).uses()
    }
    fn completed_at(&self) -> Option<i128> {
        (**self).completed_at()
    }
    fn delegator(&self, step: usize) -> Option<&dyn StoredToken> {
        (**self).delegator(step)
    }
    fn orchestrator(&self) -> Option<Arc<Agent>> {
        (**self).orchestrator()
    }
}

/// A token as a backend read it, with everything the pipeline asks of it: the simplest
/// [`StoredToken`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FoundToken {
    /// The token's record.
    pub info: TokenInfo,
    /// Its agent.
    pub agent: Arc<Agent>,
    /// The agent's parent, for a thread-scoped child (`None` when it is gone).
    pub parent: Option<Arc<Agent>>,
    /// Its uses, for a use-limited token.
    pub uses: Option<Uses>,
    /// The tokens it was delegated through, root first (empty for a token minted directly).
    pub chain: Vec<FoundToken>,
    /// The orchestrator its chain's root names, as stored now.
    pub orchestrator: Option<Arc<Agent>>,
}

impl FoundToken {
    /// A token and its agent; no parent, no chain, no orchestrator, and uses read from
    /// [`TokenInfo::operations_remaining`] with none in flight.
    pub fn new(info: TokenInfo, agent: impl Into<Arc<Agent>>) -> Self {
        let uses = info.operations_remaining.map(|remaining| Uses {
            remaining,
            in_flight: 0,
        });
        Self {
            info,
            agent: agent.into(),
            parent: None,
            uses,
            chain: Vec::new(),
            orchestrator: None,
        }
    }

    /// The agent's parent.
    pub fn with_parent(mut self, parent: Option<Arc<Agent>>) -> Self {
        self.parent = parent;
        self
    }

    /// Its uses as read (remaining and in flight).
    pub fn with_uses(mut self, uses: Option<Uses>) -> Self {
        self.uses = uses;
        self
    }

    /// The tokens it was delegated through, root first.
    pub fn with_chain(mut self, chain: Vec<FoundToken>) -> Self {
        self.chain = chain;
        self
    }

    /// The orchestrator its chain's root names.
    pub fn with_orchestrator(mut self, orchestrator: Option<Arc<Agent>>) -> Self {
        self.orchestrator = orchestrator;
        self
    }

    /// The chain's links then the token: the order every limited link is reserved in.
    pub fn links(&self) -> impl Iterator<Item = &FoundToken> {
        self.chain.iter().chain(std::iter::once(self))
    }
}

impl StoredToken for FoundToken {
    fn info(&self) -> &TokenInfo {
        &self.info
    }
    fn agent(&self) -> Arc<Agent> {
        self.agent.clone()
    }
    fn parent(&self) -> Option<Arc<Agent>> {
        self.parent.clone()
    }
    fn uses(&self) -> Option<Uses> {
        self.uses
    }
    fn delegator(&self, step: usize) -> Option<&dyn StoredToken> {
        self.chain.get(step).map(|link| link as &dyn StoredToken)
    }
    fn orchestrator(&self) -> Option<Arc<Agent>> {
        self.orchestrator.clone()
    }
}
