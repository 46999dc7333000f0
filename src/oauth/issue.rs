//! What grants issue: access tokens (the crate's own agent tokens, short-lived, bound to their
//! resource, recorded with their client), refresh tokens (opaque, in families), and how a
//! family ends.

use time::OffsetDateTime;

use super::authority::Authority;
use super::client::Client;
use super::error::OAuthError;
use super::refresh::{FamilyId, RefreshToken};
use super::response::TokenResponse;
use super::scope;
use super::secret::{self, REFRESH};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::principal::{AgentId, UserId};
use crate::store::{AgentStatus, Backend, IssuedToken, NewToken, Operation, authorize};

/// What an access token is minted for.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    /// The client it is issued to.
    pub client: &'a Client,
    /// The agent it belongs to.
    pub agent: &'a AgentId,
    /// The person who consented.
    pub user: &'a UserId,
    /// What was granted.
    pub capabilities: &'a CapabilitySet,
    /// The resource it is bound to.
    pub resource: Option<&'a str>,
    /// The grant, for the audit trail.
    pub grant: &'a str,
}

/// Seconds from `now` until `at`, at least 0 (a token with no expiry would be an error in the
/// server's configuration: it answers 0 rather than a lie).
pub(crate) fn seconds_until(at: Option<OffsetDateTime>, now: OffsetDateTime) -> u64 {
    at.map_or(0, |at| {
        u64::try_from((at - now).whole_seconds()).unwrap_or(0)
    })
}

impl<B: Backend> Authority<B> {
    /// Mints an access token: an agent token of `issue.agent`, narrowed to what was granted,
    /// living [`access_lifetime`](Authority::access_lifetime) (or less, by the agent
    /// type's maximum), bound to the resource and recorded with the client. Audited as
    /// `token_issued`.
    pub async fn mint_access(&self, issue: &Issue<'_>) -> Result<IssuedToken, OAuthError> {
        self.grant_stands(issue).await?;
        let mut new = NewToken::new(format!("oauth {}", issue.client.id))
            .with_capabilities(issue.capabilities.clone())
            .expires_in(self.access_lifetime())
            .created_by(issue.user.clone())
            .client(issue.client.id.clone());
        if let Some(resource) = issue.resource {
            new = new.resource(resource);
        }
        let issued = match self.store().create_token(issue.agent, new).await {
            Ok(issued) => issued,
            // The agent is gone, or no longer may hold what was granted (its owner's role
            // shrank): the grant no longer stands.
            Err(error @ (StoreError::NotFound(_) | StoreError::Input(_))) => {
                tracing::info!(%error, "oauth: the grant no longer stands");
                return Err(OAuthError::invalid_grant(
                    "the grant no longer stands: the agent or its owner's role changed",
                ));
            }
            Err(error) => return Err(error.into()),
        };
        self.record(
            AuditEvent::new(self.now(), AuditAction::TokenIssued, Outcome::Success)
                .agent(issue.agent.clone())
                .token(issued.info.id.clone())
                .actor(issue.user.clone())
                .detail(format!(
                    "oauth {} for client {}, scope {}, resource {}",
                    issue.grant,
                    issue.client.id,
                    scope::to_scope(issue.capabilities),
                    issue.resource.unwrap_or("none"),
                )),
        )
        .await;
        Ok(issued)
    }

    /// Whether what was consented still stands, at every code and refresh: the agent is
    /// active and unexpired, its owner active, and the person who consented still its owner
    /// or an `admin` of it. A disconnected client, a disabled agent, a deactivated owner or a
    /// withdrawn grant ends the grant here (`invalid_grant`), not only at the protected
    /// resource.
    async fn grant_stands(&self, issue: &Issue<'_>) -> Result<(), OAuthError> {
        let ended = |why: &str| {
            tracing::info!(agent = %issue.agent, why, "oauth: the grant no longer stands");
            OAuthError::invalid_grant("the grant no longer stands")
        };
        let store = self.store();
        let Some(agent) = store.agent(issue.agent).await? else {
            return Err(ended("the agent is gone"));
        };
        let now = self.now();
        if agent.status != AgentStatus::Active || agent.expires_at.is_some_and(|at| at <= now) {
            return Err(ended("the agent is disabled or expired"));
        }
        let owner = store
            .config()
            .directory
            .user(&agent.owner)
            .await
            .map_err(|error| OAuthError::from(StoreError::Unavailable(error)))?;
        if !owner.is_some_and(|owner| owner.is_active()) {
            return Err(ended("the agent's owner is gone or inactive"));
        }
        let role = store.role_of(&agent.id, issue.user).await?;
        if authorize(issue.user, &agent, role, Operation::IssueToken).is_err() {
            return Err(ended(
                "the person who consented may no longer issue its tokens",
            ));
        }
        Ok(())
    }

    /// A new refresh token of `family` beside the access token `access`: the secret (shown
    /// once) and the record to store.
    pub(crate) fn refresh_for(
        &self,
        issue: &Issue<'_>,
        family: &FamilyId,
        access: &IssuedToken,
    ) -> Result<(secret::Secret, RefreshToken), OAuthError> {
        let secret = secret::secret(REFRESH)?;
        let now = self.now();
        let lifetime =
            time::Duration::try_from(self.refresh_lifetime()).unwrap_or(time::Duration::MAX);
        let record = RefreshToken {
            hash: secret.hash(),
            family: family.clone(),
            client_id: issue.client.id.clone(),
            agent: issue.agent.clone(),
            user: issue.user.clone(),
            capabilities: issue.capabilities.clone(),
            resource: issue.resource.map(str::to_owned),
            access_token: access.info.id.clone(),
            created_at: now,
            expires_at: now.checked_add(lifetime),
            rotated_at: None,
            revoked_at: None,
        };
        Ok((secret, record))
    }

    /// The answer for an access token just minted and its refresh token.
    pub(crate) fn answer(
        &self,
        access: IssuedToken,
        capabilities: &CapabilitySet,
        refresh: &secret::Secret,
    ) -> TokenResponse {
        let expires_in = seconds_until(access.info.expires_at, self.now());
        TokenResponse::bearer(access.token, expires_in, scope::to_scope(capabilities))
            .refresh_token(refresh.expose())
    }

    /// Revokes a refresh family and every access token it issued: what a code replay, a
    /// refresh token's reuse and its revocation end. How many access tokens were revoked now.
    pub(crate) async fn revoke_family(
        &self,
        family: &FamilyId,
        agent: &AgentId,
    ) -> Result<usize, StoreError> {
        let now = self.now();
        let issued = self.store().backend().revoke_family(family, now).await?;
        let mut revoked = 0;
        for token in &issued {
            match self
                .store()
                .backend()
                .revoke_token(agent, token, now)
                .await?
            {
                Some(info) if info.revoked_at == Some(now) => revoked += 1,
                _ => {}
            }
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_whole_seconds_left() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            seconds_until(Some(now + time::Duration::seconds(3600)), now),
            3600
        );
        assert_eq!(
            seconds_until(Some(now - time::Duration::seconds(5)), now),
            0
        );
        assert_eq!(seconds_until(None, now), 0);
    }
}
