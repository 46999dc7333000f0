use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ::axum::Router;
use ::axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use http::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::password::{HashingError, PasswordVerifier};
use super::sessions::{SESSION_COOKIE, Sessions, cookie_named};
use super::throttle::{DEVICE_COOKIE, LoginLimits, LoginThrottle, Throttled};
use super::web;
use crate::audit::{AuditAction, AuditEvent, AuditWriter, Outcome};

/// The sign-in and sign-out routes, configured; [`login_router`] is the short way.
///
/// * `GET /login`: the sign-in form; `?return=/path?query` carries where to go after it.
/// * `POST /login` (form fields `user`, `password`, optional `return`): on success a session
///   cookie (`HttpOnly`, `SameSite=Lax`, `Secure` with [`Login::secure_cookies`]) and `303` to
///   `return` if it is a path on this server (`/…`, not `//…`), else to `/`; a wrong
///   password is a `401` page, an attempt over the [limits](LoginThrottle) (which count
///   wrong passwords only) a `429` page with `Retry-After` (logged, and audited as
///   `sign_in_throttled` once per window and limit: per account and address, per address,
///   per account), busy password hashing or an unreachable session store a `503` page with
///   `Retry-After`.
/// * `GET /logout`: a page with a sign-out button.
/// * `POST /logout`: ends the session (its record is deleted, for every node); `303` to
///   `/login` (the post is the sign-out form's, with its token: see
///   [`FormToken`](super::FormToken)); a `503` page, the cookie kept, when the session store
///   cannot answer.
///
/// Every route refuses cross-site posts
/// ([`SameOriginLayer::every_request`](super::SameOriginLayer::every_request), with pages), so
/// neither sign-in nor sign-out can be forged from another site. The client address the limits
/// count by is the connection's ([`ConnectInfo<SocketAddr>`]: serve with
/// `into_make_service_with_connect_info`). `X-Forwarded-For` is read only from the proxies
/// named with [`Login::trusted_proxies`]: the client is then the rightmost address in it that
/// is not one of theirs. Without `ConnectInfo`, all clients count as one address.
pub struct Login {
    sessions: Sessions,
    verifier: Arc<dyn PasswordVerifier>,
    secure: bool,
    throttle: Arc<LoginThrottle>,
    audit: Option<AuditWriter>,
    trusted_proxies: Arc<[ipnet::IpNet]>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("secure", &self.secure)
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// Sign-in against `verifier`, sessions in `sessions`, the default [`LoginLimits`], no audit.
    pub fn new(sessions: Sessions, verifier: Arc<dyn PasswordVerifier>) -> Self {
        Self {
            sessions,
            verifier,
            secure: false,
            throttle: Arc::new(LoginThrottle::new(LoginLimits::default())),
            audit: None,
            trusted_proxies: Arc::new([]),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// Dates audit events by `clock` (the store's, so that the trail has one time line;
    /// the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` is believed (none by default). Behind a proxy
    /// every connection comes from the proxy's address, so without this the limits would count
    /// all clients as one: one guesser would spend the per-address limit for everyone.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Marks the cookie `Secure` (served over HTTPS), and lets only `https://` origins post.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sign-in limits other than the default.
    pub fn throttle(mut self, throttle: LoginThrottle) -> Self {
        self.throttle = Arc::new(throttle);
        self
    }

    /// Records throttled sign-ins in the audit trail.
    pub fn audit(mut self, writer: AuditWriter) -> Self {
        self.audit = Some(writer);
        self
    }

    /// The routes.
    pub fn router(self) -> Router {
        let secure = self.secure;
        web::pages(
            Router::new()
                .route("/login", get(form_page).post(login))
                .route("/logout", get(logout_page).post(logout))
                .with_state(LoginState {
                    sessions: self.sessions,
                    verifier: self.verifier,
                    secure: self.secure,
                    throttle: self.throttle,
                    audit: self.audit,
                    trusted_proxies: self.trusted_proxies,
                    clock: self.clock,
                }),
            secure,
            web::CSP,
        )
    }
}

/// `GET /login`, `POST /login`, `GET /logout` and `POST /logout` with the default limits and no
/// audit: `Login::new(sessions, verifier).secure_cookies(secure).router()` (see [`Login`]).
pub fn login_router(
    sessions: Sessions,
    verifier: Arc<dyn PasswordVerifier>,
    secure: bool,
) -> Router {
    Login::new(sessions, verifier)
        .secure_cookies(secure)
        .router()
}

#[derive(Clone)]
struct LoginState {
    sessions: Sessions,
    verifier: Arc<dyn PasswordVerifier>,
    secure: bool,
    throttle: Arc<LoginThrottle>,
    audit: Option<AuditWriter>,
    trusted_proxies: Arc<[ipnet::IpNet]>,
    clock: Arc<dyn crate::clock::Clock>,
}

/// The client behind `peer`: `peer` itself, unless it is a trusted proxy — then the rightmost
/// `X-Forwarded-For` address that is not a trusted proxy (the one the nearest untrusted hop
/// connected from; anything left of it the client could have written). An unreadable header
/// leaves the proxy's address.
fn client_behind(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let Some(proxy) = peer.filter(is_trusted) else {
        return peer;
    };
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return Some(proxy);
        };
        for hop in value.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                Err(_) => return Some(proxy),
            }
        }
    }
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(proxy),
    )
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
    #[serde(default, rename = "return")]
    return_to: Option<String>,
}

/// Where to go after signing in, from `?return=` or the form's `return` field.
#[derive(Deserialize)]
struct ReturnTo {
    #[serde(default, rename = "return")]
    return_to: Option<String>,
}

/// `target` if it is a path on this server: it starts with one `/` (`//host` and `/\host` are
/// other hosts to a browser), and holds no backslash and no control character. Anything else
/// could send a person who just signed in to another site.
fn same_origin_path(target: &str) -> Option<&str> {
    let bytes = target.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && target.len() <= 4096
        && !bytes.iter().any(|&b| b == b'\\' || b.is_ascii_control());
    safe.then_some(target)
}

/// `templates/login.html`.
#[derive(askama::Template)]
#[template(path = "login.html")]
struct SignInPage<'a> {
    chrome: web::Chrome,
    return_to: Option<&'a str>,
}

/// `templates/logout.html`.
#[derive(askama::Template)]
#[template(path = "logout.html")]
struct SignOutPage {
    chrome: web::Chrome,
}

async fn form_page(
    ::axum::extract::Query(query): ::axum::extract::Query<ReturnTo>,
    token: web::FormToken,
) -> Response {
    let page = SignInPage {
        chrome: web::Chrome::anonymous("Sign in", Some(&token)),
        return_to: query.return_to.as_deref().and_then(same_origin_path),
    };
    web::render(StatusCode::OK, &page)
}

/// The connection's peer address, when the server was started with connect info.
struct ClientAddress(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

fn cookie(value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A page saying why signing in failed, with a link back to the form.
fn sign_in_error(status: StatusCode, heading: &str, message: &str) -> Response {
    web::message::with_link(
        status,
        heading,
        message,
        Some(("/login", "Back to sign-in")),
    )
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(RETRY_AFTER, http::HeaderValue::from(seconds.max(1)));
    response
}

/// The user a submitted name names, if any (a directory that cannot answer names no one).
async fn named_user(state: &LoginState, name: &str) -> Option<crate::principal::UserId> {
    let id = crate::principal::UserId::from(name);
    match state.sessions.directory().user(&id).await {
        Ok(Some(_)) => Some(id),
        _ => None,
    }
}

async fn throttled(
    state: &LoginState,
    user: &str,
    address: Option<IpAddr>,
    t: Throttled,
) -> Response {
    let seconds = t.retry_after.as_secs() + u64::from(t.retry_after.subsec_nanos() > 0);
    let from = address.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    // The submitted name is shown only if it names a user: people type passwords into the
    // name field, and a throttled one must not reach the log or the trail. Asked once per
    // recorded refusal (the first of its window), so a flood of 429s costs no lookups.
    let account = if t.first {
        named_user(state, user).await
    } else {
        None
    };
    tracing::warn!(
        user = account.as_ref().map(|u| u.as_str()),
        client = from,
        limit = t.limit.as_str(),
        retry_after = seconds,
        "sign-in throttled"
    );
    if let (Some(writer), true) = (&state.audit, t.first) {
        let mut event = AuditEvent::new(
            state.clock.now(),
            AuditAction::SignInThrottled,
            Outcome::Denied,
        )
        .request("POST", "/login", 429)
        .detail(format!("{} limit; client {from}", t.limit.as_str()));
        event.actor = account;
        crate::audit::record(writer, event).await;
    }
    with_retry_after(
        sign_in_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!("Too many sign-in attempts. Try again in {seconds} s."),
        ),
        seconds,
    )
}

async fn login(
    State(state): State<LoginState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let address = if state.trusted_proxies.is_empty() {
        address
    } else {
        client_behind(address, &headers, &state.trusted_proxies)
    };
    // A browser that signed in as this user before is held to its own limit only.
    let verdict = cookie_named(&headers, DEVICE_COOKIE)
        .and_then(|device| state.throttle.check_device(&form.user, device, address))
        .unwrap_or_else(|| state.throttle.check(&form.user, address));
    // Taken now, given back unless the password turns out wrong: the limits count failures,
    // and concurrent guesses cannot all pass before the first is counted.
    let attempt = match verdict {
        Ok(attempt) => attempt,
        Err(t) => return throttled(&state, &form.user, address, t).await,
    };
    let unavailable = || {
        with_retry_after(
            sign_in_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Signing in is not possible right now. Try again in a moment.",
            ),
            1,
        )
    };
    let next = form
        .return_to
        .as_deref()
        .and_then(same_origin_path)
        .unwrap_or("/");
    match state.verifier.verify(&form.user, &form.password).await {
        Ok(Some(user)) => match state.sessions.begin(user.clone()).await {
            Ok(secret) => {
                attempt.succeeded();
                tracing::info!(user = user.as_str(), "signed in");
                let mut response = (
                    StatusCode::SEE_OTHER,
                    [
                        (SET_COOKIE, cookie(&secret, None, state.secure)),
                        (LOCATION, next.to_owned()),
                    ],
                )
                    .into_response();
                if let Some(device) = state.throttle.remember_device(&form.user) {
                    let age = state.throttle.limits().known_for.as_secs();
                    let mut value = format!(
                        "{DEVICE_COOKIE}={device}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={age}"
                    );
                    if state.secure {
                        value.push_str("; Secure");
                    }
                    if let Ok(value) = http::HeaderValue::try_from(value) {
                        response.headers_mut().append(SET_COOKIE, value);
                    }
                }
                response
            }
            Err(error) => {
                // The password was right: not a failure.
                attempt.unverified();
                tracing::warn!(%error, "sign-in: session store unavailable");
                unavailable()
            }
        },
        Ok(None) => {
            attempt.failed();
            // Not the submitted name: it is sometimes a mistyped password.
            tracing::info!("sign-in refused");
            sign_in_error(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "Wrong user name or password.",
            )
        }
        Err(error) if matches!(error.downcast_ref(), Some(HashingError::Busy)) => {
            attempt.unverified();
            tracing::warn!("sign-in: password hashing busy");
            unavailable()
        }
        Err(error) => {
            attempt.unverified();
            tracing::warn!(%error, "sign-in: user store unavailable");
            unavailable()
        }
    }
}

async fn logout_page(token: web::FormToken) -> Response {
    let page = SignOutPage {
        chrome: web::Chrome::anonymous("Sign out", Some(&token)),
    };
    web::render(StatusCode::OK, &page)
}

async fn logout(State(state): State<LoginState>, headers: HeaderMap) -> Response {
    if let Some(secret) = Sessions::cookie(&headers) {
        // Not deleted is not signed out: the cookie is kept, so that signing out can be tried
        // again.
        if let Err(error) = state.sessions.end(secret).await {
            tracing::warn!(%error, "sign-out: session store unavailable");
            return with_retry_after(
                sign_in_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    "Signing out is not possible right now. Try again in a moment.",
                ),
                1,
            );
        }
    }
    // Only a form reaches here (the token check refuses anything else): back to sign-in.
    let clear = (SET_COOKIE, cookie("", Some(0), state.secure));
    (
        StatusCode::SEE_OTHER,
        [clear, (LOCATION, "/login".to_owned())],
    )
        .into_response()
}

#[cfg(test)]
mod tests;
