use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ::axum::Router;
use ::axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use ::axum::response::{Html, IntoResponse, Response};
use ::axum::routing::get;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::csrf::SameOriginLayer;
use super::pages;
use super::password::{HashingError, PasswordVerifier};
use super::sessions::{SESSION_COOKIE, Sessions, cookie_named};
use super::throttle::{DEVICE_COOKIE, LoginLimits, LoginThrottle, Throttled};
use crate::audit::{AuditAction, AuditEvent, AuditWriter, Outcome};

/// The sign-in and sign-out routes, configured; [`login_router`] is the short way.
///
/// * `GET /login`: the sign-in form; `?return=/path?query` carries where to go after it.
/// * `POST /login` (form fields `user`, `password`, optional `return`): on success a session
///   cookie (`HttpOnly`, `SameSite=Lax`, `Secure` with [`Login::secure_cookies`]) and `303` to
///   `return` if it is a path on this server (`/…`, not `//…`), else to `/`; a wrong
///   password is a `401` page, an attempt over the [limits](LoginThrottle) a `429` page with
///   `Retry-After` (logged, and audited as `sign_in_throttled` once per window and limit: per account and
///   address, per address, per account), busy password hashing a `503` page with `Retry-After`.
/// * `GET /logout`: a page with a sign-out button.
/// * `POST /logout`: ends the session; `303` to `/login` for a browser's form post, `204`
///   otherwise.
///
/// Every route refuses cross-site posts ([`SameOriginLayer::every_request`], with pages), so
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
        let mut same_origin = SameOriginLayer::every_request().html();
        if self.secure {
            same_origin = same_origin.https(true);
        }
        pages::not_framed(
            Router::new()
                .route("/login", get(form_page).post(login))
                .route("/logout", get(logout_page).post(logout))
                .layer(same_origin)
                .with_state(LoginState {
                    sessions: self.sessions,
                    verifier: self.verifier,
                    secure: self.secure,
                    throttle: self.throttle,
                    audit: self.audit,
                    trusted_proxies: self.trusted_proxies,
                    clock: self.clock,
                }),
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

async fn form_page(
    ::axum::extract::Query(query): ::axum::extract::Query<ReturnTo>,
) -> Html<String> {
    let hidden = query
        .return_to
        .as_deref()
        .and_then(same_origin_path)
        .map(|target| {
            format!(
                "<input type=\"hidden\" name=\"return\" value=\"{}\">\n",
                pages::escape(target)
            )
        })
        .unwrap_or_default();
    Html(FORM.replace("<button", &format!("{hidden}<button")))
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

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><form method="post" action="/login">
<label>User <input name="user" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>"#;

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
        pages::error(
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
        .and_then(|device| state.throttle.check_device(&form.user, device))
        .unwrap_or_else(|| state.throttle.check(&form.user, address));
    if let Err(t) = verdict {
        return throttled(&state, &form.user, address, t).await;
    }
    let unavailable = || {
        with_retry_after(
            pages::error(
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
                state.throttle.succeeded(&form.user, address);
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
            Err(_) => unavailable(),
        },
        Ok(None) => {
            // Not the submitted name: it is sometimes a mistyped password.
            tracing::info!("sign-in refused");
            pages::error(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "Wrong user name or password.",
            )
        }
        Err(error) if matches!(error.downcast_ref(), Some(HashingError::Busy)) => {
            tracing::warn!("sign-in: password hashing busy");
            unavailable()
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in: user store unavailable");
            unavailable()
        }
    }
}

async fn logout_page() -> Html<String> {
    Html(pages::page(
        "Sign out",
        &format!("<h1>Sign out</h1>\n{}", pages::LOGOUT_BUTTON),
    ))
}

/// Whether the request is a browser's form post (or asks for a page).
fn from_a_form(headers: &HeaderMap) -> bool {
    let has = |name, needle: &str| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .is_some_and(|v| v.contains(needle))
    };
    has(CONTENT_TYPE, "application/x-www-form-urlencoded")
        || has(CONTENT_TYPE, "multipart/form-data")
        || has(ACCEPT, "text/html")
}

async fn logout(State(state): State<LoginState>, headers: HeaderMap) -> Response {
    if let Some(secret) = Sessions::cookie(&headers) {
        state.sessions.end(secret);
    }
    let clear = (SET_COOKIE, cookie("", Some(0), state.secure));
    if from_a_form(&headers) {
        (
            StatusCode::SEE_OTHER,
            [clear, (LOCATION, "/login".to_owned())],
        )
            .into_response()
    } else {
        (StatusCode::NO_CONTENT, [clear]).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditFilter, AuditQuery, MemoryAuditSink, WriterOptions};
    use crate::ceiling::Policy;
    use crate::error::BoxError;
    use crate::principal::UserId;
    use crate::store::{MemoryUserDirectory, UserDirectory, UserRecord};
    use ::axum::body::Body;
    use http::Request;
    use http_body_util::BodyExt;
    use std::num::NonZeroU32;
    use std::time::Duration;
    use tower::ServiceExt;

    /// alice / pw; "busy" makes the hashing pool refuse.
    struct Verifier;

    #[async_trait::async_trait]
    impl PasswordVerifier for Verifier {
        async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError> {
            if user == "busy" {
                return Err(HashingError::Busy.into());
            }
            Ok((user == "alice" && password == "pw").then(|| UserId::from(user)))
        }
    }

    fn sessions() -> Sessions {
        let users = MemoryUserDirectory::new();
        users.insert(UserRecord::new("alice", Policy::unrestricted()));
        let directory: Arc<dyn UserDirectory> = Arc::new(users);
        Sessions::new(directory, Duration::from_secs(60))
    }

    async fn post(
        app: &Router,
        path: &str,
        body: &str,
        peer: [u8; 4],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::post(path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn busy_hashing_is_a_503_page_with_retry_after() {
        let app = login_router(sessions(), Arc::new(Verifier), false);
        let (status, headers, body) =
            post(&app, "/login", "user=busy&password=x", [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[RETRY_AFTER], "1");
        assert!(body.contains(r#"href="/login""#), "{body}");
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_rightmost_untrusted_hop() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", value.parse().unwrap());
            headers
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let proxy = ip("10.0.0.1");
        // The client wrote 1.1.1.1 itself; 203.0.113.7 is what the proxy saw.
        let forwarded = headers("1.1.1.1, 203.0.113.7, 10.0.0.2");
        assert_eq!(
            client_behind(proxy, &forwarded, &trusted),
            ip("203.0.113.7")
        );
        // Not from a trusted proxy: the header is the client's own words.
        assert_eq!(
            client_behind(ip("198.51.100.9"), &forwarded, &trusted),
            ip("198.51.100.9")
        );
        // Garbage or nothing: the proxy's address, never a guess.
        assert_eq!(client_behind(proxy, &headers("not an ip"), &trusted), proxy);
        assert_eq!(client_behind(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_behind(None, &forwarded, &trusted), None);
    }

    #[tokio::test]
    async fn a_throttled_sign_in_is_429_and_audited_once() {
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        // The trail's time line is the configured clock's, not the wall clock's.
        let at = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let app = Login::new(sessions(), Arc::new(Verifier))
            .throttle(LoginThrottle::new(LoginLimits {
                per_account_and_address: NonZeroU32::new(2).unwrap(),
                ..LoginLimits::default()
            }))
            .audit(writer.clone())
            .clock(Arc::new(crate::clock::ManualClock::new(at)))
            .router();
        let from = [192, 0, 2, 1];
        for _ in 0..2 {
            let (status, _, body) = post(&app, "/login", "user=alice&password=guess", from).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(
                body.contains("Wrong user name or password") && body.contains(r#"href="/login""#)
            );
        }
        for _ in 0..2 {
            let (status, headers, body) =
                post(&app, "/login", "user=alice&password=pw", from).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            let wait: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
            assert!(body.contains("Too many sign-in attempts"), "{body}");
        }
        // Another address is not refused.
        let (status, headers, _) =
            post(&app, "/login", "user=alice&password=pw", [192, 0, 2, 2]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/");
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::default()).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.action, AuditAction::SignInThrottled);
        assert_eq!(event.at, at);
        assert_eq!(event.outcome, Outcome::Denied);
        assert_eq!(event.actor.as_ref().map(|a| a.as_str()), Some("alice"));
        assert!(event.detail.as_deref().unwrap().contains("192.0.2.1"));
        assert_eq!(event.request.as_ref().unwrap().status, 429);
    }

    #[tokio::test]
    async fn sign_in_returns_to_a_path_of_this_server_only() {
        let app = login_router(sessions(), Arc::new(Verifier), false);
        for (target, expected) in [
            (
                "/oauth/authorize?client_id=c_1&state=x",
                "/oauth/authorize?client_id=c_1&state=x",
            ),
            ("//evil.example/x", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("/ok\r\nSet-Cookie: x", "/"),
        ] {
            let body = format!(
                "user=alice&password=pw&return={}",
                target
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            );
            let (status, headers, _) = post(&app, "/login", &body, [10, 0, 0, 1]).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{target}");
            assert_eq!(headers[LOCATION], expected, "{target}");
        }
        // The form carries a safe target on, escaped; an unsafe one not at all.
        let page = |query: &str| {
            let request = Request::get(format!("/login?return={query}"))
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        let form = page("%2Fa%3Fb%3D1%26c%3D%22").await;
        assert!(
            form.contains(r#"name="return" value="/a?b=1&amp;c=&quot;""#),
            "{form}"
        );
        assert!(!page("%2F%2Fevil.example").await.contains("name=\"return\""));
    }

    #[tokio::test]
    async fn a_form_sign_out_redirects_to_the_sign_in_form() {
        let app = login_router(sessions(), Arc::new(Verifier), false);
        let (status, headers, _) = post(&app, "/logout", "", [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/login");
        assert!(headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    }

    /// A name that is no user's — often a password typed into the wrong field — never reaches
    /// the trail (nor the log), whatever it holds.
    #[tokio::test]
    async fn a_throttled_name_that_is_no_users_is_not_recorded() {
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let app = Login::new(sessions(), Arc::new(Verifier))
            .throttle(LoginThrottle::new(LoginLimits {
                per_account_and_address: NonZeroU32::new(1).unwrap(),
                ..LoginLimits::default()
            }))
            .audit(writer.clone())
            .router();
        let typed = "user=correct%20horse%0A%1B[31m&password=x";
        for _ in 0..3 {
            post(&app, "/login", typed, [192, 0, 2, 9]).await;
        }
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::default()).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].action, AuditAction::SignInThrottled);
        assert_eq!(events[0].actor, None);
        assert!(!format!("{events:?}").contains("horse"), "{events:?}");
    }
}
