//! The delegation trait of 0.1, kept for one release: [`Store`]'s own methods now.
#![allow(deprecated)]

use super::Delegation;
use crate::error::{ResolveError, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::TokenLookup;
use crate::store::resolve::Inspection;
use crate::store::{AgentStore, Backend, IssuedToken, NewToken, Store, StoreConfig, TokenStore};

/// Delegated and task tokens, as a trait: [`Store`]'s own methods now
/// (`store.delegate(…)` needs no import).
#[deprecated(
    since = "0.2.0",
    note = "call `Store`'s own methods (remove this import); a store of your own implements `store::Backend`"
)]
#[async_trait::async_trait]
pub trait DelegationStore: AgentStore + TokenStore {
    /// [`Store::config`].
    fn store_config(&self) -> &StoreConfig;
    /// [`Store::inspect_token`].
    async fn inspect_token(&self, token: &TokenLookup<'_>) -> Result<Inspection, ResolveError>;
    /// [`Store::revoke_token_tree`].
    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError>;
    /// [`Store::complete_task`].
    async fn complete_task(&self, owner: &UserId, task_id: &str) -> Result<usize, StoreError>;
    /// [`Store::delegate`].
    async fn delegate(
        &self,
        parent_token: &str,
        request: Delegation,
    ) -> Result<IssuedToken, StoreError>;
    /// [`Store::issue_task_token`].
    async fn issue_task_token(
        &self,
        orchestrator: &AgentId,
        target: &AgentId,
        delegated_by: &UserId,
        token: NewToken,
    ) -> Result<IssuedToken, StoreError>;
}

#[async_trait::async_trait]
impl<B: Backend> DelegationStore for Store<B> {
    fn store_config(&self) -> &StoreConfig {
        self.config()
    }
    async fn inspect_token(&self, token: &TokenLookup<'_>) -> Result<Inspection, ResolveError> {
        Store::inspect_token(self, token).await
    }
    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError> {
        Store::revoke_token_tree(self, agent, token).await
    }
    async fn complete_task(&self, owner: &UserId, task_id: &str) -> Result<usize, StoreError> {
        Store::complete_task(self, owner, task_id).await
    }
    async fn delegate(
        &self,
        parent_token: &str,
        request: Delegation,
    ) -> Result<IssuedToken, StoreError> {
        Store::delegate(self, parent_token, request).await
    }
    async fn issue_task_token(
        &self,
        orchestrator: &AgentId,
        target: &AgentId,
        delegated_by: &UserId,
        token: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        Store::issue_task_token(self, orchestrator, target, delegated_by, token).await
    }
}
