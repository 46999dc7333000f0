//! `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2): a device asks, and gets its device
//! code, the user code to show, where the person goes, how long it all lives and how often to
//! poll. The client authenticates as at the token endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::State;
use ::axum::response::Response;
use ::axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::DeviceAuthorization;
use super::flow::DeviceFlow;
use super::user_code::UserCode;
use crate::ceiling::CapabilitySet;
use crate::error::{Conflict, StoreError};
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::client_auth::{authenticate, presented};
use crate::oauth::error::{ErrorCode, OAuthError, no_store_json};
use crate::oauth::params::Params;
use crate::oauth::registration::{AddressLimiter, ClientAddress};
use crate::oauth::routes::{DEVICE, DEVICE_AUTHORIZATION, cors};
use crate::oauth::{scope, secret};
use crate::store::Backend;

/// The prefix of device codes.
const DEVICE_CODE: &str = "dc_";

/// How many fresh user codes are drawn when one is taken already (a stored one, live or
/// lapsed and not yet purged: one in billions each).
const USER_CODE_DRAWS: usize = 3;

/// How often, at most, this node purges lapsed OAuth records as devices ask (seconds): device
/// authorizations are made without a person, so they must not pile up.
const PURGE_EVERY: i64 = 60;

/// The endpoint's state.
struct Endpoint<B> {
    authority: Authority<B>,
    flow: DeviceFlow,
    limiter: Arc<AddressLimiter>,
    /// When this node last purged (Unix seconds).
    purged: Arc<AtomicI64>,
}

impl<B> Clone for Endpoint<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            flow: self.flow,
            limiter: self.limiter.clone(),
            purged: self.purged.clone(),
        }
    }
}

/// What the request asks for: its `scope`, or the client's registered one, or the scopes
/// supported (as the authorization endpoint reads it).
fn requested<B: Backend>(
    authority: &Authority<B>,
    client: &Client,
    params: &Params,
) -> Result<CapabilitySet, OAuthError> {
    let asked = params.get("scope").or(client.scope.as_deref());
    let asked = asked.map(scope::parse).transpose();
    match asked.map_err(|error| OAuthError::invalid_scope(error.to_string()))? {
        Some(Some(set)) => Ok(set),
        Some(None) | None => scope::parse(&authority.scopes_supported().join(" "))
            .ok()
            .flatten()
            .ok_or_else(|| OAuthError::invalid_scope("scope is required")),
    }
}

/// Stores a new request with a fresh user code, drawn again if one is taken: the device code
/// and the user code.
async fn store_request<B: Backend>(
    authority: &Authority<B>,
    flow: &DeviceFlow,
    client: &Client,
    requested: CapabilitySet,
    resource: Option<String>,
) -> Result<(secret::Secret, UserCode), OAuthError> {
    let device_code = secret::secret(DEVICE_CODE)?;
    let interval = std::time::Duration::from_secs(flow.interval_secs());
    let now = authority.now();
    let backend = authority.store().backend();
    for _ in 0..USER_CODE_DRAWS {
        let user_code = UserCode::generate()?;
        let mut record = DeviceAuthorization::new(
            device_code.hash(),
            user_code.hash(),
            client.id.clone(),
            requested.clone(),
            now,
            flow.lifetime,
            interval,
        );
        record.resource = resource.clone();
        match backend.insert_device(&record).await {
            Ok(()) => return Ok((device_code, user_code)),
            Err(StoreError::Conflict(Conflict::Token)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    tracing::warn!("oauth: no free user code after {USER_CODE_DRAWS} draws");
    Err(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "no user code is free now; try again",
    ))
}

/// Purges records that lapsed a lifetime ago, at most once a [`PURGE_EVERY`] on this node; a
/// failure is logged.
async fn purge_now_and_then<B: Backend>(endpoint: &Endpoint<B>) {
    let now = endpoint.authority.now();
    let last = endpoint.purged.load(Ordering::Acquire);
    if now.unix_timestamp().saturating_sub(last) < PURGE_EVERY
        || (endpoint.purged)
            .compare_exchange(
                last,
                now.unix_timestamp(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
    {
        return;
    }
    // Kept a lifetime past their end, so that a device polling late is told `expired_token`.
    let lifetime = time::Duration::try_from(endpoint.flow.lifetime).unwrap_or(time::Duration::DAY);
    let before = now.saturating_sub(lifetime);
    match endpoint
        .authority
        .store()
        .backend()
        .purge_oauth(before)
        .await
    {
        Ok(purged) => tracing::debug!(purged, "oauth: lapsed records purged"),
        Err(error) => tracing::warn!(%error, "oauth: lapsed records not purged"),
    }
}

async fn device_authorization<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    if let Err(wait) = endpoint.limiter.check(address) {
        tracing::info!(client = ?address, "oauth: device authorizations rate-limited");
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!("too many device authorizations from this address; retry in {wait} s"),
        )
        .with_retry_after(wait));
    }
    let authority = &endpoint.authority;
    let params = Params::from_form(&headers, &body)?;
    let presented = presented(&headers, &params)?;
    let client = authenticate(authority.store(), &presented, authority.now()).await?;
    let requested = requested(authority, &client, &params)?;
    let resource = authority
        .target(params.get("resource"))
        .map_err(OAuthError::invalid_target)?;
    let (device_code, user_code) =
        store_request(authority, &endpoint.flow, &client, requested, resource).await?;
    authority.touch_client(&client).await;
    purge_now_and_then(&endpoint).await;
    let shown = user_code.display();
    let verification_uri = authority.issuer().endpoint(DEVICE);
    let complete = format!("{verification_uri}?user_code={shown}");
    Ok(no_store_json(
        StatusCode::OK,
        json!({
            "device_code": device_code.expose(),
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": endpoint.flow.lifetime.as_secs(),
            "interval": endpoint.flow.interval_secs(),
        }),
    ))
}

/// `POST /oauth/device_authorization`.
pub(crate) fn router<B: Backend>(authority: Authority<B>, flow: DeviceFlow) -> Router {
    let route = format!("{}{DEVICE_AUTHORIZATION}", authority.issuer().path());
    let limiter = AddressLimiter::new(flow.requests_per_address, flow.request_window);
    Router::new()
        .route(&route, post(device_authorization::<B>))
        .layer(cors())
        .with_state(Endpoint {
            authority,
            flow,
            limiter: Arc::new(limiter),
            purged: Arc::new(AtomicI64::new(0)),
        })
}
