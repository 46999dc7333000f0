//! Token revocation (RFC 7009), `POST /oauth/revoke`: an access token ends at once; a refresh
//! token ends its whole family, with the access tokens it issued. A client revokes only what
//! was issued to it; anything else — unknown, already dead, another client's — is answered 200
//! all the same, so the endpoint tells nothing about tokens that are not the caller's.

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::extract::State;
use ::axum::response::Response;
use ::axum::routing::post;
use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::authority::Authority;
use super::client::Client;
use super::client_auth::{authenticate, presented};
use super::error::OAuthError;
use super::params::Params;
use super::routes::{REVOKE, cors};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::store::Backend;
use crate::store::backend::StoredToken;
use crate::token::TokenHash;

/// Revokes `token` if it is an access token of the store's format issued to `client`: whether
/// it was one (revoked now or before).
async fn access<B: Backend>(
    server: &Authority<B>,
    client: &Client,
    token: &str,
) -> Result<bool, OAuthError> {
    let Ok(parsed) = server.store().config().format.parse(token) else {
        return Ok(false);
    };
    let found = server
        .store()
        .backend()
        .find(&parsed.hash())
        .await
        .map_err(|error| OAuthError::unavailable(&error))?;
    let Some(record) = found else {
        return Ok(false);
    };
    let info = record.info();
    if info.client_id.as_deref() != Some(client.id.as_str()) {
        return Ok(false);
    }
    let now = server.now();
    let revoked = server
        .store()
        .backend()
        .revoke_token(&info.agent_id, &info.id, now)
        .await?;
    if revoked.is_some_and(|after| after.revoked_at == Some(now)) {
        server
            .record(
                AuditEvent::new(now, AuditAction::TokenRevoked, Outcome::Success)
                    .agent(info.agent_id.clone())
                    .token(info.id.clone())
                    .detail(format!("oauth revocation by client {}", client.id)),
            )
            .await;
    }
    Ok(true)
}

/// Ends the family of `token` if it is a refresh token issued to `client`.
async fn refresh<B: Backend>(
    server: &Authority<B>,
    client: &Client,
    token: &str,
) -> Result<(), OAuthError> {
    let Some(found) = server
        .store()
        .backend()
        .refresh_token(&TokenHash::of(token))
        .await?
    else {
        return Ok(());
    };
    if found.client_id != client.id {
        return Ok(());
    }
    let revoked = server.revoke_family(&found.family, &found.agent).await?;
    server
        .record(
            AuditEvent::new(server.now(), AuditAction::RefreshRevoked, Outcome::Success)
                .agent(found.agent.clone())
                .actor(found.user.clone())
                .detail(format!(
                    "oauth revocation by client {}: family {} and {revoked} access token(s)",
                    client.id, found.family
                )),
        )
        .await;
    Ok(())
}

async fn revoke<B: Backend>(
    State(server): State<Authority<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::from_form(&headers, &body)?;
    let presented = presented(&headers, &params)?;
    let client = authenticate(server.store(), &presented, server.now()).await?;
    let token = params.require("token")?;
    // The hint only orders the lookups (RFC 7009 §2.1); each is cheap.
    if params.get("token_type_hint") == Some("refresh_token") {
        refresh(&server, &client, token).await?;
        access(&server, &client, token).await?;
    } else if !access(&server, &client, token).await? {
        refresh(&server, &client, token).await?;
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `POST /oauth/revoke`.
pub(crate) fn router<B: Backend>(server: Authority<B>) -> Router {
    let route = format!("{}{REVOKE}", server.issuer().path());
    Router::new()
        .route(&route, post(revoke::<B>))
        .layer(cors())
        .with_state(server)
}
