//! `grant_type=client_credentials` (RFC 6749 §4.4): a headless agent that holds a client
//! secret obtains a token of its own.
//!
//! Only an agent's client (`client_id` = its slug) with a secret may use it
//! (`agent-auth client register --agent SLUG`, [`Store::register_agent_client`]); any other
//! client is `unauthorized_client`. The token is that agent's, acting for its owner: `scope`
//! must lie within the owner's role, the agent's policy and, for a thread-scoped child, its
//! parent's (else `invalid_scope`); without one, it is everything those allow. It is bound to
//! `resource` (or the default resource), lives the access-token lifetime, and comes with no
//! refresh token (§4.4.3): the agent asks again. A disabled or expired agent, or an owner
//! gone or deactivated, is `invalid_grant` here, and refused at every request of a token
//! issued before, as for any agent token.
//!
//! [`Store::register_agent_client`]: crate::store::Store::register_agent_client

use super::Grant;
use crate::ceiling::CapabilitySet;
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::connect::{Acting, grantable};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issue::{Issue, seconds_until};
use crate::oauth::params::Params;
use crate::oauth::response::TokenResponse;
use crate::oauth::scope;
use crate::store::{AgentStatus, Backend};

/// The `client_credentials` grant, for agents that hold a client secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCredentialsGrant;

#[async_trait::async_trait]
impl<B: Backend> Grant<B> for ClientCredentialsGrant {
    fn grant_type(&self) -> &'static str {
        "client_credentials"
    }

    /// An agent's client that authenticated with its secret.
    fn allows(&self, client: &Client) -> bool {
        client.agent().is_some() && client.auth.is_confidential() && client.secret_hash.is_some()
    }

    async fn exchange(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(agent) = client.agent() else {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "only an agent's client uses client_credentials",
            ));
        };
        let ended = || OAuthError::invalid_grant("the agent is gone, disabled or expired");
        let agent = authority.store().agent(agent).await?.ok_or_else(ended)?;
        let now = authority.now();
        if agent.status != AgentStatus::Active || agent.expires_at.is_some_and(|at| at <= now) {
            return Err(ended());
        }
        let resource = authority
            .target(params.get("resource"))
            .map_err(OAuthError::invalid_target)?;
        let asked = match params.get("scope").map(scope::parse) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(asked))) => Some(asked),
            Some(Err(error)) => return Err(OAuthError::invalid_scope(error.to_string())),
        };
        let requested = asked.clone().unwrap_or_else(CapabilitySet::everything);
        let (id, owner) = (agent.id.clone(), agent.owner.clone());
        let acting = Acting::Agent(agent);
        let granted = grantable(authority, &acting, &owner, &requested)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the agent's owner is gone or inactive"))?;
        if asked.is_some() && !granted.covers_all(&requested) {
            return Err(OAuthError::invalid_scope(
                "scope is wider than the agent may hold (its owner's role and its policy)",
            ));
        }
        if granted.is_empty() {
            return Err(OAuthError::invalid_scope("the agent may do nothing"));
        }
        let issue = Issue {
            client,
            agent: &id,
            user: &owner,
            capabilities: &granted,
            resource: resource.as_deref(),
            grant: "client_credentials",
        };
        let access = authority.mint_access(&issue).await?;
        let expires_in = seconds_until(access.info.expires_at, authority.now());
        Ok(TokenResponse::bearer(
            access.token,
            expires_in,
            scope::to_scope(&granted),
        ))
    }
}
