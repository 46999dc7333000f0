//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): a device
//! polls with its device code until the person answers. Each poll is one step of the store
//! ([`Backend::poll_device`](crate::store::Backend::poll_device), the rules of
//! [`DevicePoll::apply`]); the answers are 400 JSON — `authorization_pending`, `slow_down`,
//! `access_denied`, `expired_token` — until an approved code is redeemed, once, for an access
//! token and a refresh token minted as the code grant's. A redeemed code presented again is
//! `invalid_grant`, and what its redemption issued is revoked.

use http::StatusCode;

use super::Grant;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::device::{DeviceAuthorization, DevicePoll, Polled};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issue::Issue;
use crate::oauth::params::Params;
use crate::oauth::refresh::FamilyId;
use crate::oauth::response::TokenResponse;
use crate::oauth::secret;
use crate::store::Backend;
use crate::token::TokenHash;

/// The device code grant's `grant_type`.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device code grant (RFC 8628).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceCodeGrant;

/// A replay: what the redemption issued is revoked, and the trail says so.
async fn replayed<B: Backend>(
    authority: &Authority<B>,
    found: &DeviceAuthorization,
    client: &Client,
) -> Result<OAuthError, OAuthError> {
    let revoked = match (&found.family, &found.agent) {
        (Some(family), Some(agent)) => authority.revoke_family(family, agent).await?,
        _ => 0,
    };
    let mut event = AuditEvent::new(authority.now(), AuditAction::CodeReplayed, Outcome::Denied)
        .detail(format!(
            "client {} presented a spent device code; {revoked} access token(s) it issued \
                 revoked, its refresh family ended",
            client.id
        ));
    event.agent = found.agent.clone();
    event.actor = found.user.clone();
    authority.record(event).await;
    Ok(OAuthError::invalid_grant(
        "the device code was used already",
    ))
}

/// Issues for a request redeemed now: an access token and a refresh token of `family`.
async fn issue<B: Backend>(
    authority: &Authority<B>,
    client: &Client,
    found: &DeviceAuthorization,
    family: &FamilyId,
) -> Result<TokenResponse, OAuthError> {
    let (Some(user), Some(agent)) = (&found.user, &found.agent) else {
        tracing::warn!("oauth: an approved device authorization names no person or agent");
        return Err(OAuthError::new(
            ErrorCode::ServerError,
            "the server failed to answer",
        ));
    };
    let issue = Issue {
        client,
        agent,
        user,
        capabilities: &found.capabilities,
        resource: found.resource.as_deref(),
        grant: "device_code",
    };
    let backend = authority.store().backend();
    let access = authority.mint_access(&issue).await?;
    let (refresh, record) = authority.refresh_for(&issue, family, &access)?;
    let now = authority.now();
    if let Err(error) = backend.insert_refresh(&record).await {
        // No refresh token, no answer: the access token goes too.
        let _ = backend.revoke_token(agent, &access.info.id, now).await;
        return Err(error.into());
    }
    // A replay that came while this issued found too little to revoke: it marked the request,
    // and what was issued is revoked here (as the code grant does).
    if backend
        .device(&found.hash)
        .await?
        .is_none_or(|now| now.replayed_at.is_some())
    {
        authority.revoke_family(family, agent).await?;
        return Err(OAuthError::invalid_grant(
            "the device code was used already",
        ));
    }
    Ok(authority.answer(access, &found.capabilities, &refresh))
}

/// A polling error of RFC 8628 §3.5: 400 JSON.
fn polling(code: ErrorCode, description: &str) -> OAuthError {
    OAuthError::new(code, description).with_status(StatusCode::BAD_REQUEST)
}

#[async_trait::async_trait]
impl<B: Backend> Grant<B> for DeviceCodeGrant {
    fn grant_type(&self) -> &'static str {
        DEVICE_CODE
    }

    async fn exchange(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let hash = TokenHash::of(params.require("device_code")?);
        let backend = authority.store().backend();
        if let Some(resource) = params.get("resource") {
            // What a request is bound to never changes: checked before the poll, so that a
            // wrong `resource` spends nothing.
            let found = backend.device(&hash).await?;
            if let Some(found) = found.filter(|found| found.client_id == client.id) {
                if found.resource.as_deref() != Some(resource) {
                    return Err(OAuthError::invalid_target(
                        "resource is not the one the device asked for",
                    ));
                }
            }
        }
        let family = FamilyId::new(secret::random(16)?);
        let poll = DevicePoll::new(hash, client.id.clone(), family.clone(), authority.now());
        match backend.poll_device(&poll).await? {
            Polled::Redeemed(found) => issue(authority, client, &found, &family).await,
            Polled::Pending => Err(polling(
                ErrorCode::AuthorizationPending,
                "the person has not answered yet",
            )),
            Polled::SlowDown(interval) => Err(polling(
                ErrorCode::SlowDown,
                &format!(
                    "polled too soon: wait {} s between polls",
                    interval.as_secs()
                ),
            )),
            Polled::Denied => Err(polling(ErrorCode::AccessDenied, "the person denied access")),
            Polled::Expired => Err(polling(
                ErrorCode::ExpiredToken,
                "the device code has expired: ask again",
            )),
            Polled::Replayed(found) => Err(replayed(authority, &found, client).await?),
            Polled::Unknown => Err(OAuthError::invalid_grant("unknown device code")),
        }
    }
}
