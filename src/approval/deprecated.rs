//! The approval trait of 0.1, kept for one release: [`Store`]'s own methods now.
#![allow(deprecated)]

use std::time::Duration;

use super::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, Decision, NewApproval, Requested,
};
use crate::error::StoreError;
use crate::principal::UserId;
use crate::store::{Backend, Store};

/// Approvals, as a trait: [`Store`]'s own methods now (`store.request_approval(…)` needs no
/// import), and a store of your own implements [`Backend`]'s approval methods.
#[deprecated(
    since = "0.2.0",
    note = "call `Store`'s own methods (remove this import); a store of your own implements `store::Backend`"
)]
#[async_trait::async_trait]
pub trait ApprovalGate: Send + Sync {
    /// [`Store::create_approval`].
    async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError>;
    /// [`Store::request_approval`].
    async fn request_approval(&self, new: NewApproval) -> Result<Requested, StoreError>;
    /// [`Store::approval`].
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError>;
    /// [`Store::list_approvals`].
    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError>;
    /// [`Store::decide_approval`].
    async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError>;
    /// [`Store::purge_approvals`].
    async fn purge_approvals(&self, older_than: Duration) -> Result<usize, StoreError>;
    /// [`Store::consume_approval`].
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError>;
}

#[async_trait::async_trait]
impl<B: Backend> ApprovalGate for Store<B> {
    async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError> {
        Store::create_approval(self, new).await
    }
    async fn request_approval(&self, new: NewApproval) -> Result<Requested, StoreError> {
        Store::request_approval(self, new).await
    }
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        Store::approval(self, id).await
    }
    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        Store::list_approvals(self, filter).await
    }
    async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError> {
        Store::decide_approval(self, id, by, decision).await
    }
    async fn purge_approvals(&self, older_than: Duration) -> Result<usize, StoreError> {
        Store::purge_approvals(self, older_than).await
    }
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError> {
        Store::consume_approval(self, binding).await
    }
}
