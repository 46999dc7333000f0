//! Dynamic client registration (RFC 7591), `POST /oauth/register`: open, as MCP clients expect,
//! and bounded — a rate limit per address, a cap on registrations, and registrations that
//! lapse unused. Registration grants nothing: a client obtains a token only through a person's
//! consent.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::{ConnectInfo, FromRequestParts, State};
use ::axum::response::Response;
use ::axum::routing::post;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authority::Authority;
use super::client::{Client, ClientAuth, ClientKind, MAX_REDIRECT_URIS};
use super::error::{ErrorCode, OAuthError, no_store_json};
use super::grant::DEVICE_CODE;
use super::name::clean_name;
use super::redirect::RedirectUri;
use super::routes::{REGISTER, cors};
use super::scope;
use super::secret::{self, CLIENT_SECRET};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::store::Backend;

/// The most keys the address limiter holds before it drops refilled ones.
const MAX_KEYS: usize = 100_000;

/// The bounds on open registration (RFC 7591): registration grants nothing, but each one is a
/// record, so there are few of them and they go when unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationLimits {
    /// The most registered clients kept at once (live ones; `None`: no cap). Past it,
    /// registration answers 503 `temporarily_unavailable` until some lapse.
    pub cap: Option<u64>,
    /// How long a registration lives without being used; each use (a consent, a token) pushes
    /// its end back by as much.
    pub unused_for: Duration,
    /// Registrations one client address may make in a burst, refilled evenly over `window`.
    pub per_address: NonZeroU32,
    /// The window `per_address` refills over.
    pub window: Duration,
}

impl Default for RegistrationLimits {
    /// 10 000 clients; 30 days unused; 10 registrations per address per hour.
    fn default() -> Self {
        Self {
            cap: Some(10_000),
            unused_for: Duration::from_secs(30 * 86_400),
            per_address: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            window: Duration::from_secs(3600),
        }
    }
}

/// The registration endpoint's state: its limits and the per-address limiter.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) limits: RegistrationLimits,
    limiter: Arc<AddressLimiter>,
}

impl Registration {
    pub(crate) fn new(limits: RegistrationLimits) -> Self {
        Self {
            limiter: Arc::new(AddressLimiter::new(limits.per_address, limits.window)),
            limits,
        }
    }
}

/// Requests per client address (an IPv6 address counts by its /64): registrations, device
/// authorizations.
pub(crate) struct AddressLimiter {
    limiter: DefaultKeyedRateLimiter<[u8; 16]>,
    clock: DefaultClock,
}

impl AddressLimiter {
    /// `per_address` in a burst, refilled evenly over `window`.
    pub(crate) fn new(per_address: NonZeroU32, window: Duration) -> Self {
        let period = (window / per_address.get()).max(Duration::from_millis(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
            .allow_burst(per_address);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a request from `address`: `Err(seconds to wait)` over the limit.
    pub(crate) fn check(&self, address: Option<IpAddr>) -> Result<(), u64> {
        let key = match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
            Some(IpAddr::V6(v6)) => {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&v6.octets()[..8]);
                key[8] = 0xff;
                key
            }
            None => [0; 16],
        };
        if self.limiter.len() >= MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The request's metadata (RFC 7591 §2); what is not listed is ignored.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    application_type: Option<String>,
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// What a registration becomes: the client and the echoed fields.
struct Registered {
    client: Client,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    application_type: String,
}

fn validate(
    metadata: Metadata,
    id: String,
    now: time::OffsetDateTime,
) -> Result<Registered, OAuthError> {
    let grant_types = metadata
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty()
        || grant_types.iter().any(|g| {
            !matches!(g.as_str(), "authorization_code" | "refresh_token") && g != DEVICE_CODE
        })
    {
        return Err(metadata_error(format!(
            "grant_types may hold authorization_code, refresh_token and {DEVICE_CODE}"
        )));
    }
    // A client without the code grant (a device) is never sent back anywhere: it may list no
    // redirect URI.
    let redirected = grant_types.iter().any(|g| g == "authorization_code");
    let uris = metadata.redirect_uris.unwrap_or_default();
    if (redirected && uris.is_empty()) || uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for uri in &uris {
        RedirectUri::parse(uri)
            .map_err(|error| OAuthError::new(ErrorCode::InvalidRedirectUri, error.to_string()))?;
    }
    // RFC 7591 §2: an omitted method is client_secret_basic.
    let method = metadata
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic");
    let auth = ClientAuth::parse(method)
        .ok_or_else(|| metadata_error("token_endpoint_auth_method is not supported"))?;
    let response_types = metadata.response_types.unwrap_or_else(|| match redirected {
        true => vec!["code".into()],
        false => Vec::new(),
    });
    if response_types.iter().any(|r| r != "code") {
        return Err(metadata_error("response_types may hold code only"));
    }
    let application_type = metadata.application_type.unwrap_or_else(|| "web".into());
    if !matches!(application_type.as_str(), "web" | "native") {
        return Err(metadata_error("application_type is web or native"));
    }
    let scope = match metadata.scope.as_deref().map(scope::parse) {
        Some(Ok(Some(set))) => Some(scope::to_scope(&set)),
        Some(Ok(None)) | None => None,
        Some(Err(error)) => return Err(metadata_error(error.to_string())),
    };
    let mut client = Client::new(
        id,
        ClientKind::Registered,
        clean_name(metadata.client_name.as_deref()),
        now,
    );
    client.redirect_uris = uris;
    client.auth = auth;
    client.scope = scope;
    Ok(Registered {
        client,
        grant_types,
        response_types,
        application_type,
    })
}

/// The connection's peer address, when the server was started with connect info.
pub(crate) struct ClientAddress(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            (parts.extensions.get::<ConnectInfo<SocketAddr>>()).map(|info| info.0.ip()),
        ))
    }
}

/// The endpoint's state.
struct Endpoint<B> {
    authority: Authority<B>,
    registration: Registration,
}

impl<B> Clone for Endpoint<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            registration: self.registration.clone(),
        }
    }
}

async fn register<B: Backend>(
    State(Endpoint {
        authority: server,
        registration,
    }): State<Endpoint<B>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    if let Err(wait) = registration.limiter.check(address) {
        tracing::info!(client = ?address, "oauth: registration rate-limited");
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!("too many registrations from this address; retry in {wait} s"),
        )
        .with_retry_after(wait));
    }
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(metadata_error("the body must be application/json"));
    }
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|_| metadata_error("the body is not client metadata JSON"))?;
    let now = server.now();
    let Registered {
        mut client,
        grant_types,
        response_types,
        application_type,
    } = validate(metadata, secret::client_id()?, now)?;
    let secret = match client.auth.is_confidential() {
        true => Some(secret::secret(CLIENT_SECRET)?),
        false => None,
    };
    client.secret_hash = secret.as_ref().map(|s| s.hash());
    client.expires_at = server.unused_until(&client.kind);
    let store = server.store();
    let cap = registration.limits.cap;
    let mut stored = store.backend().insert_client(&client, cap, now).await?;
    if !stored {
        // Lapsed registrations still held count for nothing, but make room for them first.
        store.backend().purge_oauth(now).await?;
        stored = store.backend().insert_client(&client, cap, now).await?;
    }
    if !stored {
        tracing::warn!("oauth: registration refused, the cap on clients is reached");
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "registration is closed: too many clients are registered",
        ));
    }
    server
        .record(
            AuditEvent::new(now, AuditAction::ClientRegistered, Outcome::Success)
                .request("POST", REGISTER, 201)
                .detail(format!(
                    "client {} ({}, {}), from {}",
                    client.id,
                    client.auth.as_str(),
                    application_type,
                    address.map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
                )),
        )
        .await;
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": now.unix_timestamp(),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.auth.as_str(),
        "grant_types": grant_types,
        "response_types": response_types,
        "application_type": application_type,
    });
    if let Some(scope) = &client.scope {
        body["scope"] = Value::from(scope.as_str());
    }
    if let Some(secret) = &secret {
        body["client_secret"] = Value::from(secret.expose());
        body["client_secret_expires_at"] = Value::from(0);
    }
    Ok(no_store_json(StatusCode::CREATED, body))
}

/// `POST /oauth/register`.
pub(crate) fn router<B: Backend>(authority: Authority<B>, registration: Registration) -> Router {
    let route = format!("{}{REGISTER}", authority.issuer().path());
    Router::new()
        .route(&route, post(register::<B>))
        .layer(cors())
        .with_state(Endpoint {
            authority,
            registration,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: Value) -> Metadata {
        serde_json::from_value(value).unwrap()
    }

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let registered = validate(
            metadata(json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]})),
            "c_x".into(),
            now(),
        )
        .unwrap();
        assert_eq!(registered.client.auth, ClientAuth::SecretBasic);
        assert_eq!(registered.grant_types, ["authorization_code"]);
        assert_eq!(registered.response_types, ["code"]);
        assert_eq!(registered.client.name, "Unnamed client");
    }

    #[test]
    fn bad_metadata_is_refused_with_its_code() {
        let code = |value| {
            validate(metadata(value), "c_x".into(), now())
                .err()
                .map(|e| e.code())
        };
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb#frag"]})),
            Some(ErrorCode::InvalidRedirectUri)
        );
        assert_eq!(code(json!({})), Some(ErrorCode::InvalidRedirectUri));
        let uri = json!(["https://a.example/cb"]);
        assert_eq!(
            code(json!({"redirect_uris": uri, "token_endpoint_auth_method": "private_key_jwt"})),
            Some(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            code(json!({"redirect_uris": uri, "grant_types": ["implicit"]})),
            Some(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            code(json!({"redirect_uris": uri, "response_types": ["token"]})),
            Some(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            code(json!({"redirect_uris": uri, "scope": "Not A Scope"})),
            Some(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            code(json!({"redirect_uris": uri, "application_type": "native"})),
            None
        );
    }

    #[test]
    fn a_device_client_may_list_no_redirect_uri() {
        let device = json!({
            "grant_types": [DEVICE_CODE, "refresh_token"],
            "token_endpoint_auth_method": "none",
        });
        let registered = validate(metadata(device), "c_x".into(), now()).unwrap();
        assert!(registered.client.redirect_uris.is_empty());
        assert!(registered.response_types.is_empty());
        // With the code grant, a redirect URI is still required.
        let both = json!({"grant_types": [DEVICE_CODE, "authorization_code"]});
        let error = validate(metadata(both), "c_x".into(), now()).err().unwrap();
        assert_eq!(error.code(), ErrorCode::InvalidRedirectUri);
    }
}
