//! The store traits of 0.1, kept for one release so that code written against them still
//! compiles (with a warning). Each is implemented for every [`Store`]; new code calls the
//! store's own methods, and a store of your own implements [`Backend`] instead.
#![allow(deprecated)]

use std::time::Duration;

use super::access::{AccessGrant, AccessRole};
use super::backend::Backend;
use super::domain::Store;
use super::model::{Agent, AgentStatus, ImportedToken, IssuedToken, NewAgent, NewToken, TokenInfo};
use crate::ceiling::Policy;
use crate::principal::{AgentId, TokenId, UserId};

/// Moved to [`crate::error::StoreError`].
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::StoreError`"
)]
pub type StoreError = crate::error::StoreError;

/// Moved to [`crate::error::ChangeFeedError`].
#[cfg(feature = "sql")]
#[deprecated(
    since = "0.2.0",
    note = "moved to `tower_agent_auth::error::ChangeFeedError`"
)]
pub type ChangeFeedError = crate::error::ChangeFeedError;

type Result<T> = std::result::Result<T, crate::error::StoreError>;

/// Agents, as a trait: [`Store`]'s own methods now (`store.create_agent(…)` needs no import).
#[deprecated(
    since = "0.2.0",
    note = "call `Store`'s own methods (remove this import); a store of your own implements `store::Backend`"
)]
#[async_trait::async_trait]
pub trait AgentStore: Send + Sync {
    /// [`Store::create_agent`].
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent>;
    /// [`Store::agent`].
    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>>;
    /// [`Store::agent_by_slug`].
    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>>;
    /// [`Store::list_agents`].
    async fn list_agents(&self) -> Result<Vec<Agent>>;
    /// [`Store::children`].
    async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>>;
    /// [`Store::agents_owned_by`].
    async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>>;
    /// [`Store::set_agent_status`].
    async fn set_agent_status(&self, id: &AgentId, status: AgentStatus) -> Result<Agent>;
    /// [`Store::set_agent_policy`].
    async fn set_agent_policy(&self, id: &AgentId, policy: Policy) -> Result<Agent>;
    /// [`Store::delete_agent`].
    async fn delete_agent(&self, id: &AgentId) -> Result<()>;
    /// [`Store::clock`].
    fn clock(&self) -> &dyn crate::clock::Clock;
}

/// Tokens, as a trait: [`Store`]'s own methods now.
#[deprecated(
    since = "0.2.0",
    note = "call `Store`'s own methods (remove this import); a store of your own implements `store::Backend`"
)]
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// [`Store::create_token`].
    async fn create_token(&self, agent: &AgentId, token: NewToken) -> Result<IssuedToken>;
    /// [`Store::list_tokens`].
    async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>>;
    /// [`Store::revoke_token`].
    async fn revoke_token(&self, agent: &AgentId, token: &TokenId) -> Result<TokenInfo>;
    /// [`Store::revoke_all_tokens`].
    async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize>;
    /// [`Store::token`].
    async fn token(&self, agent: &AgentId, token: &TokenId) -> Result<Option<TokenInfo>>;
    /// [`Store::import_token`].
    async fn import_token(&self, agent: &AgentId, token: ImportedToken) -> Result<TokenInfo>;
    /// [`Store::purge`].
    async fn purge(&self, older_than: Duration) -> Result<usize>;
    /// [`Store::rotate_token`].
    async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: Duration,
    ) -> Result<IssuedToken>;
}

/// Grants, as a trait: [`Store`]'s own methods now.
#[deprecated(
    since = "0.2.0",
    note = "call `Store`'s own methods (remove this import); a store of your own implements `store::Backend`"
)]
#[async_trait::async_trait]
pub trait GrantStore: Send + Sync {
    /// [`Store::grant`].
    async fn grant(&self, agent: &AgentId, user: &UserId, role: AccessRole) -> Result<AccessGrant>;
    /// [`Store::revoke_grant`].
    async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<()>;
    /// [`Store::grants`].
    async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>>;
    /// [`Store::role_of`].
    async fn role_of(&self, agent: &AgentId, user: &UserId) -> Result<Option<AccessRole>>;
    /// [`Store::agents_visible_to`].
    async fn agents_visible_to(&self, user: &UserId) -> Result<Vec<AgentId>>;
}

#[async_trait::async_trait]
impl<B: Backend> AgentStore for Store<B> {
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent> {
        Store::create_agent(self, agent).await
    }
    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>> {
        Store::agent(self, id).await
    }
    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>> {
        Store::agent_by_slug(self, slug).await
    }
    async fn list_agents(&self) -> Result<Vec<Agent>> {
        Store::list_agents(self).await
    }
    async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>> {
        Store::children(self, parent).await
    }
    async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>> {
        Store::agents_owned_by(self, owner).await
    }
    async fn set_agent_status(&self, id: &AgentId, status: AgentStatus) -> Result<Agent> {
        Store::set_agent_status(self, id, status).await
    }
    async fn set_agent_policy(&self, id: &AgentId, policy: Policy) -> Result<Agent> {
        Store::set_agent_policy(self, id, policy).await
    }
    async fn delete_agent(&self, id: &AgentId) -> Result<()> {
        Store::delete_agent(self, id).await
    }
    fn clock(&self) -> &dyn crate::clock::Clock {
        Store::clock(self)
    }
}

#[async_trait::async_trait]
impl<B: Backend> TokenStore for Store<B> {
    async fn create_token(&self, agent: &AgentId, token: NewToken) -> Result<IssuedToken> {
        Store::create_token(self, agent, token).await
    }
    async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>> {
        Store::list_tokens(self, agent).await
    }
    async fn revoke_token(&self, agent: &AgentId, token: &TokenId) -> Result<TokenInfo> {
        Store::revoke_token(self, agent, token).await
    }
    async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize> {
        Store::revoke_all_tokens(self, agent).await
    }
    async fn token(&self, agent: &AgentId, token: &TokenId) -> Result<Option<TokenInfo>> {
        Store::token(self, agent, token).await
    }
    async fn import_token(&self, agent: &AgentId, token: ImportedToken) -> Result<TokenInfo> {
        Store::import_token(self, agent, token).await
    }
    async fn purge(&self, older_than: Duration) -> Result<usize> {
        Store::purge(self, older_than).await
    }
    async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: Duration,
    ) -> Result<IssuedToken> {
        Store::rotate_token(self, agent, token, grace).await
    }
}

#[async_trait::async_trait]
impl<B: Backend> GrantStore for Store<B> {
    async fn grant(&self, agent: &AgentId, user: &UserId, role: AccessRole) -> Result<AccessGrant> {
        Store::grant(self, agent, user, role).await
    }
    async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<()> {
        Store::revoke_grant(self, agent, user).await
    }
    async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>> {
        Store::grants(self, agent).await
    }
    async fn role_of(&self, agent: &AgentId, user: &UserId) -> Result<Option<AccessRole>> {
        Store::role_of(self, agent, user).await
    }
    async fn agents_visible_to(&self, user: &UserId) -> Result<Vec<AgentId>> {
        Store::agents_visible_to(self, user).await
    }
}
