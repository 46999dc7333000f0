#![doc = include_str!("../../docs/delegation.md")]

mod attenuate;
mod audited;
mod deprecated;
mod request;

pub use crate::error::DelegationError;
pub use audited::Delegator;
#[allow(deprecated)]
pub use deprecated::DelegationStore;
pub use request::Delegation;

use crate::error::{InvalidReason, ResolveError, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::TokenLookup;
use crate::store::resolve::Inspection;
use crate::store::{Backend, IssuedToken, NewToken, Store};

impl<B: Backend> Store<B> {
    /// Resolves `token` through the [pipeline](crate::store::resolve) — every check, the same
    /// refusals — without reserving or recording a use: what a delegation from it may lend.
    pub async fn inspect_token(&self, token: &TokenLookup<'_>) -> Result<Inspection, ResolveError> {
        crate::store::resolve::inspect(self, token).await
    }

    /// Revokes the token `token` of `agent` and every token delegated from it, below and below
    /// that, in one call; returns how many were revoked now (those revoked already are not
    /// counted). A token of another agent is [`NotFound::Token`](crate::error::NotFound::Token).
    pub async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError> {
        self.token(agent, token)
            .await?
            .ok_or_else(|| StoreError::unknown_token(agent, token))?;
        self.backend()
            .revoke_token_tree(agent, token, self.now())
            .await
    }

    /// Ends every live token of `owner`'s agents minted for the task `task_id`, and every token
    /// delegated from one: each records the instant in
    /// [`TokenInfo::task_completed_at`](crate::store::TokenInfo::task_completed_at) and is
    /// refused as `expired` from now on, a state no clock reading undoes (a node whose clock is
    /// behind that instant refuses it too). Returns how many ended.
    pub async fn complete_task(&self, owner: &UserId, task_id: &str) -> Result<usize, StoreError> {
        self.backend()
            .complete_task(owner, task_id, self.now())
            .await
    }

    /// Issues a child of the token `parent_token` (its raw secret, the proof of possession) as
    /// `request` asks: see the [module docs](self) for what is checked.
    pub async fn delegate(
        &self,
        parent_token: &str,
        request: Delegation,
    ) -> Result<IssuedToken, StoreError> {
        let parent = inspect_parent(self, parent_token).await?;
        issue_child(self, &parent, request).await
    }

    /// Mints a task token for `target` as the orchestrator agent `orchestrator` (authenticated
    /// by the caller, e.g. by client credentials) on behalf of the person `delegated_by`. The
    /// token records both; at every request the orchestrator must still be an active
    /// orchestrator and the person active, and the orchestrator's policy and the person's role
    /// are layers of its ceiling. Refuses a non-orchestrator (and an orchestrator that is a
    /// thread-scoped child, stored before [`NewAgent::orchestrator`](crate::store::NewAgent::orchestrator)
    /// refused one), a target of another owner or the orchestrator itself, and an unknown or
    /// inactive person, and a person who is neither the target's owner nor holds a grant (any
    /// role) on the target ([`DelegationError::DelegatingUserUnrelated`]): a task token acts on
    /// behalf of someone who answers for its agent.
    pub async fn issue_task_token(
        &self,
        orchestrator: &AgentId,
        target: &AgentId,
        delegated_by: &UserId,
        token: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let config = self.config();
        let orchestrator = self.agent_required(orchestrator).await?;
        let target = self.agent_required(target).await?;
        let person = config
            .directory
            .user(delegated_by)
            .await
            .map_err(StoreError::Unavailable)?;
        let related = target.owner == *delegated_by
            || self.role_of(&target.id, delegated_by).await?.is_some();
        let token = attenuate::task_token(
            config,
            &orchestrator,
            &target,
            attenuate::Person {
                id: delegated_by,
                record: person.as_ref(),
                related,
            },
            token,
        )?;
        self.create_token(&target.id, token).await
    }
}

/// The parent token of a delegation, resolved through the pipeline without spending a use:
/// a token that is not this store's, or does not resolve now, is
/// [`DelegationError::ParentRefused`]; an outage is [`StoreError::Unavailable`].
pub(crate) async fn inspect_parent<B: Backend>(
    store: &Store<B>,
    parent_token: &str,
) -> Result<Inspection, StoreError> {
    let parsed = store
        .config()
        .format
        .parse(parent_token)
        .map_err(|_| DelegationError::ParentRefused(InvalidReason::Malformed))?;
    store
        .inspect_token(&TokenLookup::parsed(&parsed))
        .await
        .map_err(|error| match error.reason() {
            Some(reason) => StoreError::Delegation(DelegationError::ParentRefused(reason)),
            None => StoreError::unavailable(error),
        })
}

/// Issues the child `request` asks for under `parent`, as it was inspected.
pub(crate) async fn issue_child<B: Backend>(
    store: &Store<B>,
    parent: &Inspection,
    request: Delegation,
) -> Result<IssuedToken, StoreError> {
    let target = store.agent_required(&request.target).await?;
    let token = attenuate::child_token(store.config(), parent, &target, &request)?;
    store.create_token(&target.id, token).await
}
