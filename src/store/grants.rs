//! Access grants: a user's role on an agent, granted, withdrawn and read.

use std::collections::HashSet;

use super::Store;
use super::access::{AccessGrant, AccessRole};
use super::backend::{AgentFilter, Backend, GrantFilter};
use super::validate;
use crate::error::{NotFound, StoreError};
use crate::principal::{AgentId, UserId};

impl<B: Backend> Store<B> {
    /// Grants `role` on `agent` to `user`, replacing any earlier grant of theirs. The user must
    /// exist in the directory.
    pub async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        self.agent_required(agent).await?;
        validate::existing_user(self.config(), user).await?;
        let grant = AccessGrant {
            agent_id: agent.clone(),
            user_id: user.clone(),
            role,
            granted_at: self.now(),
        };
        self.backend().put_grant(&grant).await?;
        Ok(grant)
    }

    /// Withdraws the user's grant; [`NotFound::Grant`] if there is none.
    pub async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
        self.agent_required(agent).await?;
        if self.backend().delete_grant(agent, user).await? {
            Ok(())
        } else {
            Err(NotFound::Grant {
                agent: agent.to_string(),
                user: user.to_string(),
            }
            .into())
        }
    }

    /// The agent's grants, by user.
    pub async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
        self.agent_required(agent).await?;
        let mut grants = self
            .backend()
            .grants(&GrantFilter::Agent(agent.clone()))
            .await?;
        grants.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(grants)
    }

    /// The user's role on the agent, if any.
    pub async fn role_of(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<Option<AccessRole>, StoreError> {
        let one = GrantFilter::One(agent.clone(), user.clone());
        let grants = self.backend().grants(&one).await?;
        Ok(grants.iter().map(|grant| grant.role).max())
    }

    /// The agents `user` may see ([`Operation::ViewAgent`](super::Operation::ViewAgent)), by
    /// slug: those they own, those they hold any grant on, and the thread-scoped children of
    /// either (a child is managed by whoever manages its parent). Three reads, whatever the
    /// number of agents in the store.
    pub async fn agents_visible_to(&self, user: &UserId) -> Result<Vec<AgentId>, StoreError> {
        let backend = self.backend();
        // A child's owner is its parent's: owning the parent is owning the child.
        let mut visible = backend.agents(&AgentFilter::OwnedBy(user.clone())).await?;
        let granted: Vec<AgentId> = backend
            .grants(&GrantFilter::User(user.clone()))
            .await?
            .into_iter()
            .map(|grant| grant.agent_id)
            .collect();
        if !granted.is_empty() {
            visible.extend(backend.agents(&AgentFilter::Ids(granted.clone())).await?);
            visible.extend(backend.agents(&AgentFilter::ChildrenOf(granted)).await?);
        }
        visible.sort_by(|a, b| a.slug.cmp(&b.slug));
        let mut seen = HashSet::new();
        visible.retain(|agent| seen.insert(agent.id.clone()));
        Ok(visible.into_iter().map(|agent| agent.id).collect())
    }
}
