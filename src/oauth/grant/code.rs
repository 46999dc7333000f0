//! `grant_type=authorization_code` (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6): a code, redeemed
//! once, for the client it was issued to, with its redirect URI and verifier. A replayed code
//! is `invalid_grant`, and what its first redemption issued is revoked.

use super::Grant;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::code::{AuthorizationCode, Redemption};
use crate::oauth::error::OAuthError;
use crate::oauth::issue::Issue;
use crate::oauth::params::Params;
use crate::oauth::pkce;
use crate::oauth::refresh::FamilyId;
use crate::oauth::response::TokenResponse;
use crate::oauth::secret;
use crate::store::Backend;
use crate::token::TokenHash;

/// The `authorization_code` grant.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizationCodeGrant;

/// The checks a redeemed code must pass: issued to this client, for this redirect URI and
/// resource, with this verifier, and not expired.
fn check(
    code: &AuthorizationCode,
    client: &Client,
    params: &Params,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if params.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri is not the authorization request's",
        ));
    }
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_grant("code_verifier is required (PKCE)"))?;
    pkce::verify(verifier, &code.challenge)
        .map_err(|error| OAuthError::invalid_grant(error.to_string()))?;
    if let Some(resource) = params.get("resource") {
        if code.resource.as_deref() != Some(resource) {
            return Err(OAuthError::invalid_target(
                "resource is not the one the code was issued for",
            ));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl<B: Backend> Grant<B> for AuthorizationCodeGrant {
    fn grant_type(&self) -> &'static str {
        "authorization_code"
    }

    async fn exchange(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("code")?;
        let hash = TokenHash::of(presented);
        let now = authority.now();
        let backend = authority.store().backend();
        // The family first, set by the redemption itself: a replay, however soon, finds it.
        let family = FamilyId::new(secret::random(16)?);
        let code = match backend.redeem_code(&hash, &family, now).await? {
            Redemption::Redeemed(code) => code,
            Redemption::Replayed(code) => {
                let revoked = match &code.family {
                    Some(family) => authority.revoke_family(family, &code.agent).await?,
                    None => 0,
                };
                authority
                    .record(
                        AuditEvent::new(now, AuditAction::CodeReplayed, Outcome::Denied)
                            .agent(code.agent.clone())
                            .actor(code.user.clone())
                            .detail(format!(
                                "client {} presented a spent code (by client {}); {revoked} \
                                 access token(s) it issued revoked, its refresh family ended",
                                code.client_id, client.id
                            )),
                    )
                    .await;
                return Err(OAuthError::invalid_grant("the code was used already"));
            }
            Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown code")),
        };
        // Redeemed now: a code that fails a check stays spent.
        check(&code, client, params, now)?;
        let issue = Issue {
            client,
            agent: &code.agent,
            user: &code.user,
            capabilities: &code.capabilities,
            resource: code.resource.as_deref(),
            grant: "authorization_code",
        };
        let access = authority.mint_access(&issue).await?;
        let (refresh, record) = authority.refresh_for(&issue, &family, &access)?;
        if let Err(error) = backend.insert_refresh(&record).await {
            // No refresh token, no answer: the access token goes too.
            let _ = backend
                .revoke_token(&code.agent, &access.info.id, now)
                .await;
            return Err(error.into());
        }
        // A replay that came while this issued found too little to revoke: it marked the code,
        // and what was issued is revoked here. One that comes after this read finds the
        // refresh token stored, and revokes the family itself.
        if backend
            .code(&hash)
            .await?
            .is_none_or(|code| code.replayed_at.is_some())
        {
            authority.revoke_family(&family, &code.agent).await?;
            return Err(OAuthError::invalid_grant("the code was used already"));
        }
        Ok(authority.answer(access, &code.capabilities, &refresh))
    }
}
