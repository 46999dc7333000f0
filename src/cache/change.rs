//! What a cache must hear about: the changes that can narrow or end access, and the feeds
//! that carry them from wherever they were made (this process, another node, the CLI).

use crate::error::BoxError;
use crate::principal::{AgentId, TokenId, UserId};
use crate::token::TokenHash;

/// One change that can narrow or end what a cached verdict admits: the key the verdicts that
/// depend on it are found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Change {
    /// A token was revoked, rotated, deleted, completed or changed, or a token up a delegated
    /// token's chain was.
    Token(TokenId),
    /// An agent was disabled, deleted or changed (policy, expiry, parent, type), or an agent up
    /// a chain, a thread-scoped child's parent or a task token's orchestrator was.
    Agent(AgentId),
    /// A user (an owner, or the person a task token was minted for) was deactivated, removed or
    /// given another role.
    User(UserId),
    /// Anything may have changed: every verdict is dropped.
    All,
}

/// A change as a feed delivers it: its place in the store's order of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The store's change epoch once this change committed: the epochs of a store's changes
    /// run 1, 2, 3, … in commit order, with no gaps.
    pub epoch: u64,
    /// What changed.
    pub change: Change,
}

/// A store's record of its changes, read by a cache to learn of changes made anywhere.
///
/// The store keeps a change epoch that every change of [`Change`]'s kinds advances by one, in
/// commit order, and the changes of recent epochs. A cache asks for the changes since the
/// last epoch it applied at the interval of its bound, so that a change whose notice was lost
/// still reaches it in time; a [`Subscription`], when the store has one, brings notices at
/// once.
#[async_trait::async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// The changes after `epoch`, oldest first, at most `limit` of them, and the store's epoch
    /// now. When the store no longer holds every change after `epoch` (it keeps only recent
    /// ones), the answer says so with [`Changes::complete`] `false` and the cache drops every
    /// verdict.
    async fn changes_since(&self, epoch: u64, limit: usize) -> Result<Changes, BoxError>;

    /// Subscribes to notices as changes commit, in epoch order; `Ok(None)` when the store
    /// pushes nothing (the cache then relies on [`ChangeFeed::changes_since`] alone). An error
    /// from the subscription means notices may have been lost.
    async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>, BoxError> {
        Ok(None)
    }
}

/// What [`ChangeFeed::changes_since`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The changes after the epoch asked about, oldest first.
    pub notices: Vec<Notice>,
    /// The store's epoch when it answered.
    pub epoch: u64,
    /// `false` when changes after the epoch asked about are no longer held: every verdict must
    /// be dropped.
    pub complete: bool,
}

/// A stream of notices, in epoch order.
#[async_trait::async_trait]
pub trait Subscription: Send + 'static {
    /// The next notice. An error means the channel broke and notices may have been lost: the
    /// cache admits nothing from memory until it has subscribed again and caught up.
    async fn next(&mut self) -> Result<Notice, BoxError>;
}

/// A second-level verdict cache shared by many nodes (Redis, feature `redis`): values hold no
/// secret, keys are token hashes and the change epoch they were written at, so a change
/// anywhere makes every older entry unreachable.
#[async_trait::async_trait]
pub trait SecondLevel: Send + Sync + 'static {
    /// The principal stored for `hash` at `epoch`, if any.
    async fn get(
        &self,
        hash: &TokenHash,
        epoch: u64,
    ) -> Result<Option<crate::principal::Principal>, BoxError>;

    /// Stores `principal` for `hash` at `epoch`, kept at most `ttl`.
    async fn put(
        &self,
        hash: &TokenHash,
        epoch: u64,
        principal: &crate::principal::Principal,
        ttl: std::time::Duration,
    ) -> Result<(), BoxError>;
}
