#![doc = include_str!("../../docs/principal.md")]

use std::sync::Arc;

use crate::ceiling::{CapabilityCeiling, CapabilitySet, LayerSource, Policy};

#[cfg(feature = "redis")]
pub(crate) mod wire;

mod agent;
mod id;

pub use agent::{AgentRef, AgentType, DelegationLink, NameSet, TaskScope};
pub use id::{AgentId, TokenId, UserId};

/// How the request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthSource {
    /// An ordinary user session (cookie or similar), resolved by a
    /// [`SessionResolver`](crate::SessionResolver).
    Session,
    /// An agent bearer token minted directly for its agent.
    AgentToken,
    /// An agent bearer token delegated to its agent by another token's holder (see
    /// [`crate::delegation`], its only producer): the principal's
    /// [`delegation_chain`](ExecutionPrincipal::delegation_chain) names whose authority it acts
    /// under.
    Delegated,
}

impl AuthSource {
    /// A stable lowercase name (`session`, `agent_token`, `delegated`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::AgentToken => "agent_token",
            Self::Delegated => "delegated",
        }
    }

    /// Whether an agent token (minted directly or delegated) authenticated the request.
    pub fn is_agent(&self) -> bool {
        matches!(self, Self::AgentToken | Self::Delegated)
    }
}

/// Everything a handler needs to know about who is acting on this request.
///
/// Built by a [`TokenResolver`](crate::TokenResolver) for agent tokens or a
/// [`SessionResolver`](crate::SessionResolver) for user sessions; both produce the same type, so
/// handlers never care which path was taken. Every permission check goes through
/// [`ExecutionPrincipal::can`], i.e. through the [`CapabilityCeiling`].
#[derive(Debug, Clone)]
pub struct ExecutionPrincipal {
    user_id: UserId,
    agent: Option<AgentRef>,
    source: AuthSource,
    token_id: Option<TokenId>,
    ceiling: CapabilityCeiling,
    delegation: Arc<[DelegationLink]>,
    task_id: Option<Arc<str>>,
    task: Option<Arc<TaskScope>>,
    orchestrator: Option<AgentRef>,
    max_operations: Option<u64>,
    expires_at: Option<time::OffsetDateTime>,
    audience: Option<Arc<str>>,
    client_id: Option<Arc<str>>,
}

impl ExecutionPrincipal {
    /// A user signed in by an ordinary session; `ceiling` is normally the user's role alone.
    pub fn session(user_id: UserId, ceiling: CapabilityCeiling) -> Self {
        Self {
            user_id,
            agent: None,
            source: AuthSource::Session,
            token_id: None,
            ceiling,
            delegation: Arc::new([]),
            task_id: None,
            task: None,
            orchestrator: None,
            max_operations: None,
            expires_at: None,
            audience: None,
            client_id: None,
        }
    }

    /// An agent acting for `user_id` with the token `token_id`.
    pub fn agent(
        user_id: UserId,
        agent: AgentRef,
        token_id: TokenId,
        ceiling: CapabilityCeiling,
    ) -> Self {
        Self {
            user_id,
            agent: Some(agent),
            source: AuthSource::AgentToken,
            token_id: Some(token_id),
            ceiling,
            delegation: Arc::new([]),
            task_id: None,
            task: None,
            orchestrator: None,
            max_operations: None,
            expires_at: None,
            audience: None,
            client_id: None,
        }
    }

    /// Starts the principal of an agent acting for `user_id` with the token `token_id`, bounded
    /// by the owner's role; add the agent's policy and the token's capabilities, then
    /// [`build`](AgentPrincipalBuilder::build) it:
    ///
    /// ```
    /// use tower_agent_auth::ExecutionPrincipal;
    /// use tower_agent_auth::ceiling::{CapabilitySet, Policy};
    /// use tower_agent_auth::principal::AgentRef;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let principal = ExecutionPrincipal::agent_builder(
    ///     "bob",
    ///     AgentRef::new("agent-7", "inventory-bot"),
    ///     "tok-1",
    ///     Policy::allow(CapabilitySet::parse(["stock:*"])?),
    /// )
    /// .token_capabilities(CapabilitySet::parse(["stock:read"])?)
    /// .build();
    /// assert!(principal.can("stock:read"));
    /// assert!(!principal.can("stock:write")); // the token narrows the owner's role
    /// # Ok(()) }
    /// ```
    pub fn agent_builder(
        user_id: impl Into<UserId>,
        agent: AgentRef,
        token_id: impl Into<TokenId>,
        owner_role: Policy,
    ) -> AgentPrincipalBuilder {
        AgentPrincipalBuilder {
            principal: Self::agent(
                user_id.into(),
                agent,
                token_id.into(),
                CapabilityCeiling::new(Arc::new(owner_role)),
            ),
        }
    }

    /// Attaches the task the token was minted for.
    pub fn with_task_id(mut self, task_id: impl Into<Arc<str>>) -> Self {
        self.task_id = Some(task_id.into());
        self
    }

    /// Attaches what the token was minted for (its task id becomes
    /// [`task_id`](ExecutionPrincipal::task_id) too).
    pub fn with_task(mut self, task: TaskScope) -> Self {
        self.task_id = task.task_id.clone();
        self.task = Some(Arc::new(task));
        self
    }

    /// Marks the principal as acting for a task token minted by the orchestrator `orchestrator`
    /// (or a token delegated from one): it is a party to the principal's authority, so a
    /// supervised orchestrator makes the principal [supervised](ExecutionPrincipal::is_supervised).
    /// Stores call this through the resolution pipeline; [`TaskScope::orchestrator`] names the
    /// same agent.
    pub fn with_orchestrator(mut self, orchestrator: AgentRef) -> Self {
        if self.agent.is_some() {
            self.orchestrator = Some(orchestrator);
        }
        self
    }

    /// Marks the principal as acting under the authority of `chain` (the first link nearest
    /// the human first): its source becomes [`AuthSource::Delegated`]. Stores call this
    /// through the resolution pipeline, which checks every link; a custom resolver that calls
    /// it vouches for the chain itself.
    pub fn with_delegation_chain(mut self, chain: Vec<DelegationLink>) -> Self {
        if !chain.is_empty() && self.agent.is_some() {
            self.source = AuthSource::Delegated;
            self.delegation = chain.into();
        }
        self
    }

    /// Marks the token as use-limited to `n` operations: the layer then tells the resolver,
    /// through [`TokenResolver::settle_use`](crate::TokenResolver::settle_use), whether each
    /// admitted request spent its use.
    pub fn with_max_operations(mut self, n: u64) -> Self {
        self.max_operations = Some(n);
        self
    }

    /// Bounds how long this verdict stands: [`expires_at`](ExecutionPrincipal::expires_at)
    /// becomes the earlier of `at` and what it was (calling it for each expiry — the token's,
    /// the agent's, a link's up the chain — keeps the earliest).
    pub fn with_expires_at(mut self, at: time::OffsetDateTime) -> Self {
        self.expires_at = Some(match self.expires_at {
            Some(earlier) if earlier <= at => earlier,
            _ => at,
        });
        self
    }

    /// Binds an agent principal to the resource (RFC 8707) its token was issued for: see
    /// [`audience`](ExecutionPrincipal::audience). Stores call this through the resolution
    /// pipeline; a session principal has no audience.
    pub fn with_audience(mut self, resource: impl Into<Arc<str>>) -> Self {
        if self.agent.is_some() {
            self.audience = Some(resource.into());
        }
        self
    }

    /// Names the OAuth client the agent principal's token was issued to: see
    /// [`client_id`](ExecutionPrincipal::client_id).
    pub fn with_client_id(mut self, client: impl Into<Arc<str>>) -> Self {
        if self.agent.is_some() {
            self.client_id = Some(client.into());
        }
        self
    }

    /// The human the request acts for (the agent's owner, or the signed-in user).
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The agent, absent for session requests.
    pub fn agent_ref(&self) -> Option<&AgentRef> {
        self.agent.as_ref()
    }

    /// The agent id, absent for session requests.
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent.as_ref().map(AgentRef::id)
    }

    /// How the request authenticated.
    pub fn auth_source(&self) -> AuthSource {
        self.source
    }

    /// The token used, absent for session requests.
    pub fn token_id(&self) -> Option<&TokenId> {
        self.token_id.as_ref()
    }

    /// The ceiling every permission check goes through.
    pub fn ceiling(&self) -> &CapabilityCeiling {
        &self.ceiling
    }

    /// The task the token was minted for, if any.
    pub fn task_id(&self) -> Option<&str> {
        self.task_id.as_deref()
    }

    /// The use limit that bounds this principal's requests: the least limit up its chain. That
    /// is the token's own limit when it has one (a delegation never gets more uses than its
    /// parent has left), else the least limit of the tokens it was delegated through; `None`
    /// when no token of the chain is limited. Every request spends a use of each limited link.
    /// [`TaskScope::max_operations`] is the token's own limit only.
    pub fn max_operations(&self) -> Option<u64> {
        self.max_operations
    }

    /// The earliest instant from which this verdict no longer stands: the first expiry among
    /// the token's, its agent's, the agent's parent's, the orchestrator's and those of every
    /// link up the delegation chain (token, agent, agent's parent). `None` when nothing
    /// expires. A cache must not answer with the principal from this instant on.
    pub fn expires_at(&self) -> Option<time::OffsetDateTime> {
        self.expires_at
    }

    /// The resource (RFC 8707) the token is bound to, its audience: a layer told another
    /// resource refuses the principal. `None` for a token usable at any resource (one minted
    /// by the CLI or the REST API) and for sessions. A delegated token without one of its own
    /// is bound to the nearest audience up its chain.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The OAuth client the token was issued to (introspection's `client_id`); `None` for a
    /// token no OAuth grant issued and for sessions.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// What the token was minted for, if it was minted for a task (or by an orchestrator).
    pub fn task(&self) -> Option<&TaskScope> {
        self.task.as_deref()
    }

    /// How many delegations lie between the token and one minted directly: the length of
    /// [`delegation_chain`](ExecutionPrincipal::delegation_chain), 0 for a direct token.
    pub fn delegation_depth(&self) -> usize {
        self.delegation.len()
    }

    /// The agents that delegated to this one, the first (nearest the human) first; empty for a
    /// token minted directly and for sessions. Only the principal's own agent acts: the links
    /// are whose authority it acts under (RFC 8693's nested `act`).
    pub fn delegation_chain(&self) -> &[DelegationLink] {
        &self.delegation
    }

    /// The orchestrator that minted the principal's task token (or the task token its chain
    /// starts at), with the type it acts as; `None` for any other principal.
    pub fn orchestrator(&self) -> Option<&AgentRef> {
        self.orchestrator.as_ref()
    }

    /// Whether a person must approve this principal's critical actions: its agent, any agent it
    /// acts under, or the orchestrator that minted its task token is [`AgentType::Supervised`]
    /// (the pipeline gives a thread-scoped child of a supervised agent that type). So a
    /// supervised orchestrator acts through no agent without approval, and neither do the
    /// tokens delegated from its task tokens.
    pub fn is_supervised(&self) -> bool {
        self.agent
            .iter()
            .chain(self.delegation.iter().map(DelegationLink::agent))
            .chain(self.orchestrator.iter())
            .any(|agent| agent.agent_type() == AgentType::Supervised)
    }

    /// Whether this principal may use the capability `name` (e.g. `posts:publish`).
    pub fn can(&self, name: &str) -> bool {
        self.ceiling.allows(name)
    }
}

/// Builds the principal of an agent from plain values: see
/// [`ExecutionPrincipal::agent_builder`]. Every layer added narrows the ceiling.
#[derive(Debug, Clone)]
#[must_use = "call build() to get the principal"]
pub struct AgentPrincipalBuilder {
    principal: ExecutionPrincipal,
}

impl AgentPrincipalBuilder {
    fn narrowed(mut self, source: LayerSource, policy: Policy) -> Self {
        self.principal.ceiling = self.principal.ceiling.narrowed_by(source, Arc::new(policy));
        self
    }

    /// The policy of the agent's parent, for a thread-scoped child.
    pub fn parent_policy(self, policy: Policy) -> Self {
        self.narrowed(LayerSource::ParentAgentPolicy, policy)
    }

    /// The agent's own policy.
    pub fn agent_policy(self, policy: Policy) -> Self {
        self.narrowed(LayerSource::AgentPolicy, policy)
    }

    /// The capabilities the token was minted with.
    pub fn token_capabilities(self, capabilities: CapabilitySet) -> Self {
        self.narrowed(LayerSource::Token, Policy::allow(capabilities))
    }

    /// The task the token was minted for.
    pub fn task_id(mut self, task_id: impl Into<Arc<str>>) -> Self {
        self.principal = self.principal.with_task_id(task_id);
        self
    }

    /// The token's use limit (see [`ExecutionPrincipal::with_max_operations`]).
    pub fn max_operations(mut self, n: u64) -> Self {
        self.principal = self.principal.with_max_operations(n);
        self
    }

    /// The principal, ready to return from a [`TokenResolver`](crate::TokenResolver).
    pub fn build(self) -> Principal {
        self.principal.into()
    }
}

/// A shared handle to the request's [`ExecutionPrincipal`], as stored in request extensions.
///
/// `AgentAuthLayer` inserts it; read it with `request.extensions().get::<Principal>()` or, with
/// the `axum` feature, extract it in a handler. Cloning it is one reference-count increment.
#[derive(Debug, Clone)]
pub struct Principal {
    principal: Arc<ExecutionPrincipal>,
}

impl Principal {
    /// Wraps a principal.
    pub fn new(principal: ExecutionPrincipal) -> Self {
        Self {
            principal: Arc::new(principal),
        }
    }

    /// The shared principal.
    pub fn into_inner(self) -> Arc<ExecutionPrincipal> {
        self.principal
    }
}

impl From<ExecutionPrincipal> for Principal {
    fn from(principal: ExecutionPrincipal) -> Self {
        Self::new(principal)
    }
}

impl std::ops::Deref for Principal {
    type Target = ExecutionPrincipal;
    fn deref(&self) -> &ExecutionPrincipal {
        &self.principal
    }
}
