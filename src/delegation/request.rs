//! What a delegation asks for.

use crate::ceiling::CapabilitySet;
use crate::principal::AgentId;
use crate::store::NewToken;

/// A request for a child token: the agent it is for, and how it narrows its parent. Anything
/// left out is inherited: the parent's ceiling, its effective expiry, its task.
#[derive(Debug, Clone)]
pub struct Delegation {
    pub(crate) target: AgentId,
    pub(crate) label: String,
    pub(crate) capabilities: Option<CapabilitySet>,
    pub(crate) expires_in: Option<std::time::Duration>,
    pub(crate) max_operations: Option<u64>,
    pub(crate) expires_on_completion: bool,
    pub(crate) task_id: Option<String>,
    pub(crate) intent: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) client: Option<String>,
}

impl Delegation {
    /// A child token for `target` (any active agent of the parent's owner, the parent's own
    /// agent included, but not the orchestrator that minted the chain's task token), labelled
    /// `label`.
    pub fn to(target: impl Into<AgentId>, label: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            label: label.into(),
            capabilities: None,
            expires_in: None,
            max_operations: None,
            expires_on_completion: false,
            task_id: None,
            intent: None,
            environment: None,
            resource: None,
            client: None,
        }
    }

    /// Narrows the child to these capabilities; each must lie wholly within the parent's
    /// effective ceiling.
    pub fn with_capabilities(mut self, capabilities: CapabilitySet) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// The child expires this long after it is issued; not past the parent's effective expiry.
    /// Without one it inherits that expiry, or gets the target agent type's default lifetime
    /// when that ends sooner.
    pub fn expires_in(mut self, ttl: std::time::Duration) -> Self {
        self.expires_in = Some(ttl);
        self
    }

    /// The child admits at most `n` requests of its own, no more than the parent has left.
    /// With or without it, each request of the child also spends a use of every use-limited
    /// token up its chain.
    pub fn max_operations(mut self, n: u64) -> Self {
        self.max_operations = Some(n);
        self
    }

    /// The child expires when its last operation is used (needs
    /// [`max_operations`](Delegation::max_operations)).
    pub fn expires_on_completion(mut self) -> Self {
        self.expires_on_completion = true;
        self
    }

    /// The task the child serves. A child of a task token may not name another task (only
    /// the parent's own); a child of a parent without a task may name any.
    pub fn task_id(mut self, task: impl Into<String>) -> Self {
        self.task_id = Some(task.into());
        self
    }

    /// What the child is meant to do (the parent's intent when left out).
    pub fn intent(mut self, intent: impl Into<String>) -> Self {
        self.intent = Some(intent.into());
        self
    }

    /// Where the child's task runs. A child of a parent with an environment may not name
    /// another; a child of a parent that names none may name any.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Binds the child to a resource (RFC 8707), its audience. A child of a parent bound to a
    /// resource is bound to the same one and may not name another
    /// ([`DelegationError::OtherResource`](crate::error::DelegationError::OtherResource)); a
    /// child of a parent bound to none may name none
    /// ([`DelegationError::ResourceWithoutAudience`](crate::error::DelegationError::ResourceWithoutAudience)):
    /// a resource that requires an audience must not admit it where its parent is refused.
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(uri.into());
        self
    }

    /// Records the OAuth client the child is issued to (what introspection answers as its
    /// `client_id`): token exchange names the client that asked. Not inherited: a child
    /// issued otherwise names none.
    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client = Some(id.into());
        self
    }

    /// The agent the child is for.
    pub fn target(&self) -> &AgentId {
        &self.target
    }

    /// The token request this becomes, before the parent's inheritance is applied.
    pub(crate) fn new_token(&self) -> NewToken {
        let mut token = NewToken::new(self.label.clone());
        token.capabilities = self.capabilities.clone();
        token.expires_in = self.expires_in;
        token.max_operations = self.max_operations;
        token.expires_on_completion = self.expires_on_completion;
        token.client_id = self.client.clone();
        token
    }
}
