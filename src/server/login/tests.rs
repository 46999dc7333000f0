use super::*;
use crate::audit::{AuditFilter, AuditQuery, MemoryAuditSink, WriterOptions};
use crate::ceiling::Policy;
use crate::error::BoxError;
use crate::principal::UserId;
use crate::store::{MemoryUserDirectory, UserDirectory, UserRecord};
use ::axum::body::Body;
use http::Request;
use http::header::{CONTENT_TYPE, COOKIE};
use http_body_util::BodyExt;
use std::num::NonZeroU32;
use std::time::Duration;
use tower::ServiceExt;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

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
    // As the page's form does: the token bound to the pre-session cookie.
    let pre_session = "0".repeat(64);
    let token = web::FormToken::for_secret(&pre_session);
    let body = format!("{body}&{}={}", web::FORM_FIELD, token.as_str());
    let mut request = Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("{}={pre_session}", web::FORM_COOKIE))
        .body(Body::from(body))
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
    let (status, headers, body) = post(&app, "/login", "user=busy&password=x", [10, 0, 0, 1]).await;
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
        assert!(body.contains("Wrong user name or password") && body.contains(r#"href="/login""#));
    }
    for _ in 0..2 {
        let (status, headers, body) = post(&app, "/login", "user=alice&password=pw", from).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(body.contains("Too many sign-in attempts"), "{body}");
    }
    // Another address is not refused.
    let (status, headers, _) = post(&app, "/login", "user=alice&password=pw", [192, 0, 2, 2]).await;
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
        form.contains(r#"name="return" value="/a?b=1&#38;c=&#34;""#),
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

/// A script without the device cookie signing in again and again is never refused: the limits
/// count wrong passwords only.
#[tokio::test]
async fn ten_right_passwords_in_a_row_without_a_device_cookie_are_all_admitted() {
    let app = login_router(sessions(), Arc::new(Verifier), false);
    let from = [192, 0, 2, 20];
    for n in 0..10 {
        let (status, headers, _) = post(&app, "/login", "user=alice&password=pw", from).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in {n}");
        assert!(
            headers[SET_COOKIE]
                .to_str()
                .unwrap()
                .starts_with(SESSION_COOKIE)
        );
    }
    // Wrong passwords still meet the limit (5 per minute by default), the right one then too.
    for _ in 0..5 {
        let (status, _, _) = post(&app, "/login", "user=alice&password=guess", from).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for body in ["user=alice&password=guess", "user=alice&password=pw"] {
        let (status, headers, _) = post(&app, "/login", body, from).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(headers.contains_key(RETRY_AFTER));
    }
}

/// Busy hashing verified no password: as many as come are answered 503, none counted.
#[tokio::test]
async fn busy_hashing_does_not_count_against_the_limits() {
    let app = Login::new(sessions(), Arc::new(Verifier))
        .throttle(LoginThrottle::new(LoginLimits {
            per_account_and_address: NonZeroU32::new(1).unwrap(),
            ..LoginLimits::default()
        }))
        .router();
    for _ in 0..5 {
        let (status, _, _) = post(&app, "/login", "user=busy&password=x", [10, 0, 0, 7]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}

/// Sign-out deletes the session: the cookie opens nothing afterwards.
#[tokio::test]
async fn sign_out_ends_the_session() {
    let sessions = sessions();
    let app = login_router(sessions.clone(), Arc::new(Verifier), false);
    let (_, headers, _) = post(&app, "/login", "user=alice&password=pw", [10, 0, 0, 8]).await;
    let set = headers[SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let secret = cookie.split_once('=').unwrap().1.to_owned();
    assert_eq!(
        sessions.user(&secret).await.unwrap(),
        Some(UserId::from("alice"))
    );
    // The sign-out form, with the token of the session's pages.
    let token = web::FormToken::for_secret(&secret);
    let mut request = Request::post("/logout")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::COOKIE, &cookie)
        .body(Body::from(format!(
            "{}={}",
            web::FORM_FIELD,
            token.as_str()
        )))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 8], 40000))));
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(sessions.user(&secret).await.unwrap(), None);
}

/// A session store that cannot answer.
#[derive(Debug)]
struct StoreDown;

#[async_trait::async_trait]
impl crate::server::SessionStore for StoreDown {
    async fn save(&self, _: &Record) -> session_store::Result<()> {
        Err(session_store::Error::Backend("down".into()))
    }
    async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
        Err(session_store::Error::Backend("down".into()))
    }
    async fn delete(&self, _: &Id) -> session_store::Result<()> {
        Err(session_store::Error::Backend("down".into()))
    }
}

/// With the session store down, a right password is a 503 (not counted against the limits),
/// and signing out is a 503 that keeps the cookie, so that it can be tried again.
#[tokio::test]
async fn a_session_store_that_cannot_answer_is_a_503_page() {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let sessions = Sessions::with_store(Arc::new(users), Duration::from_secs(60), StoreDown);
    let app = Login::new(sessions, Arc::new(Verifier))
        .throttle(LoginThrottle::new(LoginLimits {
            per_account_and_address: NonZeroU32::new(1).unwrap(),
            ..LoginLimits::default()
        }))
        .router();
    for _ in 0..3 {
        let (status, headers, _) =
            post(&app, "/login", "user=alice&password=pw", [10, 0, 0, 9]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[RETRY_AFTER], "1");
        assert!(!headers.contains_key(SET_COOKIE));
    }
    let token = web::FormToken::for_secret(&"a".repeat(64));
    let mut request = Request::post("/logout")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            http::header::COOKIE,
            format!("{SESSION_COOKIE}={}", "a".repeat(64)),
        )
        .body(Body::from(format!(
            "{}={}",
            web::FORM_FIELD,
            token.as_str()
        )))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 40000))));
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !response.headers().contains_key(SET_COOKIE),
        "the cookie kept"
    );
}
