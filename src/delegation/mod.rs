//! Delegation: the holder of a token obtains a child token for a sub-agent, never wider than
//! what it holds; and orchestrators mint task tokens for the other agents of their owner.
//!
//! This module is the only producer of [`AuthSource::Delegated`](crate::principal::AuthSource):
//! [`Store::delegate`](crate::store::Store::delegate) takes the parent's raw token as proof of possession (like
//! RFC 8693's `subject_token`), resolves it through the [pipeline](crate::store::resolve)
//! without spending a use ([`Store::inspect_token`](crate::store::Store::inspect_token)), and issues the child
//! only if it lies within the parent as it stands now:
//!
//! - its capabilities within the parent's effective ceiling (a pattern such as `posts:*` only
//!   if the parent allows all of it, see [`CapabilityCeiling::covers`](crate::ceiling::CapabilityCeiling::covers));
//! - its expiry not past the parent's effective expiry (the earliest up the chain, tokens and
//!   agents); without one it inherits that expiry (or the target type's default lifetime, if
//!   that ends sooner);
//! - its use limit not above the uses the parent has left (the fewest up the chain);
//! - its depth not above [`StoreConfig::max_delegation_depth`](crate::store::StoreConfig::max_delegation_depth)
//!   (a token minted directly has depth 0, its child 1, …);
//! - for an active agent of the same owner (the parent's own agent included), but never the
//!   orchestrator that minted the chain's task token ([`DelegationError::NotAnotherAgent`]);
//! - serving the parent's task: task id, intent, environment, orchestrator and delegating
//!   person are inherited. A child of a task token may not name another task
//!   ([`DelegationError::OtherTask`]), nor a child of a token with an environment another
//!   environment ([`DelegationError::OtherEnvironment`]); a child of a token with no task (or
//!   no environment) may name any.
//!
//! A refusal is [`StoreError::Delegation`](crate::error::StoreError::Delegation) naming what
//! exceeds.
//!
//! # At every request
//!
//! Issuing is not the only check: every request of a delegated token checks every link up its
//! chain — each token (revoked, expired, spent, gone), its agent (disabled, expired, its own
//! parent), the owner — and each link's agent policy, parent policy and token capabilities are
//! layers of the ceiling. So revoking, expiring, exhausting or deleting an ancestor, disabling
//! its agent or narrowing its policy refuses or narrows every descendant at its next request.
//! A refusal for a link up the chain is [`InvalidReason::DelegatorRefused`].
//!
//! Issuing reads the parent and then stores the child: a parent revoked in between yields a
//! child that is refused at its first request, never one that outlives it.
//!
//! Rotating a token does not move its children: they stay children of the old token. For a
//! parent without a use limit they end with it, at the end of its grace. A use-limited parent
//! cuts them off at once: rotation moves its uses left to the new token, so the old one is
//! exhausted, and every request of a child spends a use of it (refused as
//! `delegator_refused`). Delegate again from the new token to go on.
//!
//! Uses are shared down the chain: a request under a child spends one use of the child (if
//! limited) and of every use-limited ancestor, reserved all-or-nothing and settled alike. A
//! parent with 3 uses gets at most 3 operations done in all, through any number of children.
//!
//! # Example
//!
//! ```
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::delegation::{Delegation, DelegationError};
//! use tower_agent_auth::error::StoreError;
//! use tower_agent_auth::principal::AuthSource;
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::{TokenLookup, TokenResolver};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::allow(CapabilitySet::parse(["posts:*"])?)));
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//!
//! let planner = store.create_agent(NewAgent::new("planner", "alice")).await?;
//! let writer = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! let parent = store
//!     .create_token(&planner.id, NewToken::new("plan").max_operations(3).task_id("launch"))
//!     .await?;
//!
//! // The planner hands the writer part of its authority, for the same task.
//! let child = store
//!     .delegate(
//!         parent.token.expose_secret(),
//!         Delegation::to(writer.id.clone(), "draft")
//!             .with_capabilities(CapabilitySet::parse(["posts:draft"])?),
//!     )
//!     .await?;
//! assert_eq!(child.info.delegation_depth, 1);
//! assert_eq!(child.info.task_id.as_deref(), Some("launch"));
//!
//! // A request with the child token, as the layer resolves it.
//! let parsed = store.token_format().parse(child.token.expose_secret())?;
//! let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
//! let principal = store.resolve(&lookup).await?;
//! assert_eq!(principal.auth_source(), AuthSource::Delegated);
//! assert_eq!(principal.delegation_chain()[0].agent().slug(), "planner");
//! assert!(principal.can("posts:draft") && !principal.can("posts:publish"));
//!
//! // It cannot lend more than it holds.
//! let wider = store
//!     .delegate(
//!         parent.token.expose_secret(),
//!         Delegation::to(writer.id.clone(), "more").max_operations(10),
//!     )
//!     .await;
//! assert!(matches!(
//!     wider,
//!     Err(StoreError::Delegation(DelegationError::UsesExceedParent { requested: 10, .. }))
//! ));
//!
//! // Revoking the parent's subtree ends the child too.
//! assert_eq!(store.revoke_token_tree(&planner.id, &parent.info.id).await?, 2);
//! # Ok(()) }
//! ```

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
