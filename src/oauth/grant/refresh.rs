//! `grant_type=refresh_token` (RFC 6749 §6, OAuth 2.1 §4.3.1): rotated at every use. A spent
//! or revoked refresh token presented again is `invalid_grant`, and its whole family — every
//! refresh token and the access tokens they issued — is revoked, and audited.

use super::Grant;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::issue::Issue;
use crate::oauth::params::Params;
use crate::oauth::refresh::{RefreshRotation, RefreshToken};
use crate::oauth::response::TokenResponse;
use crate::oauth::scope;
use crate::store::Backend;
use crate::token::TokenHash;

/// The `refresh_token` grant.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefreshTokenGrant;

/// A reuse: the family ends, and the trail says so.
async fn reused<B: Backend>(
    authority: &Authority<B>,
    token: &RefreshToken,
    client: &Client,
) -> Result<OAuthError, OAuthError> {
    let revoked = authority.revoke_family(&token.family, &token.agent).await?;
    authority
        .record(
            AuditEvent::new(authority.now(), AuditAction::RefreshReused, Outcome::Denied)
                .agent(token.agent.clone())
                .actor(token.user.clone())
                .detail(format!(
                    "client {} presented a spent refresh token (family {}); the family and \
                     {revoked} access token(s) revoked",
                    client.id, token.family
                )),
        )
        .await;
    Ok(OAuthError::invalid_grant(
        "the refresh token was used already",
    ))
}

#[async_trait::async_trait]
impl<B: Backend> Grant<B> for RefreshTokenGrant {
    fn grant_type(&self) -> &'static str {
        "refresh_token"
    }

    async fn exchange(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let hash = TokenHash::of(params.require("refresh_token")?);
        let now = authority.now();
        let backend = authority.store().backend();
        let unknown = || OAuthError::invalid_grant("unknown refresh token");
        let old = backend.refresh_token(&hash).await?.ok_or_else(unknown)?;
        if old.client_id != client.id {
            // Not this client's: as if unknown, and its holder keeps it.
            return Err(unknown());
        }
        if old.rotated_at.is_some() || old.revoked_at.is_some() {
            return Err(reused(authority, &old, client).await?);
        }
        if old.expires_at.is_some_and(|at| at <= now) {
            return Err(OAuthError::invalid_grant("the refresh token has expired"));
        }
        if let Some(resource) = params.get("resource") {
            if old.resource.as_deref() != Some(resource) {
                return Err(OAuthError::invalid_target(
                    "resource is not the one the refresh token was issued for",
                ));
            }
        }
        // A scope may narrow this access token; the grant itself never widens (RFC 6749 §6).
        let capabilities = match params.get("scope").map(scope::parse) {
            None | Some(Ok(None)) => old.capabilities.clone(),
            Some(Ok(Some(asked))) if old.capabilities.covers_all(&asked) => asked,
            Some(Ok(Some(_))) => {
                return Err(OAuthError::invalid_scope(
                    "scope is wider than what was granted",
                ));
            }
            Some(Err(error)) => return Err(OAuthError::invalid_scope(error.to_string())),
        };
        let issue = Issue {
            client,
            agent: &old.agent,
            user: &old.user,
            capabilities: &capabilities,
            resource: old.resource.as_deref(),
            grant: "refresh_token",
        };
        let access = authority.mint_access(&issue).await?;
        // The new refresh token keeps the whole grant, whatever this access token narrowed to.
        let kept = Issue {
            capabilities: &old.capabilities,
            ..issue
        };
        let (refresh, record) = authority.refresh_for(&kept, &old.family, &access)?;
        let rotation = backend.rotate_refresh(&hash, &record, now).await;
        let discard = || async {
            let _ = backend.revoke_token(&old.agent, &access.info.id, now).await;
        };
        match rotation {
            Ok(RefreshRotation::Rotated(_)) => {}
            Ok(RefreshRotation::Reused(found)) => {
                // Another rotation of the same token won the race: a reuse.
                discard().await;
                return Err(reused(authority, &found, client).await?);
            }
            Ok(RefreshRotation::Unknown) => {
                discard().await;
                return Err(unknown());
            }
            Err(error) => {
                discard().await;
                return Err(error.into());
            }
        }
        authority
            .record(
                AuditEvent::new(now, AuditAction::RefreshRotated, Outcome::Success)
                    .agent(old.agent.clone())
                    .token(access.info.id.clone())
                    .actor(old.user.clone())
                    .detail(format!("client {}, family {}", client.id, old.family)),
            )
            .await;
        Ok(authority.answer(access, &capabilities, &refresh))
    }
}
