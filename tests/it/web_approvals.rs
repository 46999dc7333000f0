//! The approvals page and the audit-trail page over HTTP: deciding through the page's forms
//! (with their token), who sees the buttons and who is refused, the pending list the script
//! polls, escaping of what agents wrote, and the trail's filters and pages.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_agent_auth::approval::{
    ApprovalId, ApprovalRejection, ApprovalStatus, CriticalAction, Supervision,
};
use tower_agent_auth::audit::{AuditAction, AuditEvent, AuditSink, Outcome};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::error::InvalidReason;
use tower_agent_auth::principal::{AgentId, UserId};
use tower_agent_auth::server::{FormToken, ManageState, Pages, SESSION_COOKIE, Sessions};
use tower_agent_auth::store::{
    AccessRole, AgentType, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserDirectory,
    UserRecord,
};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{AgentAuthLayer, Principal};

/// The people: alice owns `payer`; adam is its admin, vera its operator, otto its viewer;
/// mallory owns `hidden` and may see nothing of alice's.
const PEOPLE: [&str; 5] = ["alice", "adam", "vera", "otto", "mallory"];

struct App {
    router: Router,
    store: MemoryStore,
    sessions: Sessions,
    /// `payer`'s token.
    token: String,
    payer: AgentId,
    hidden: AgentId,
}

async fn app() -> App {
    let users = MemoryUserDirectory::new();
    for user in PEOPLE {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let payer = store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let hidden = store
        .create_agent(NewAgent::new("hidden", "mallory"))
        .await
        .unwrap();
    for (user, role) in [
        ("adam", AccessRole::Admin),
        ("vera", AccessRole::Operator),
        ("otto", AccessRole::Viewer),
    ] {
        store.grant(&payer.id, &user.into(), role).await.unwrap();
    }
    let token = store
        .create_token(&payer.id, NewToken::new("t"))
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let supervision =
        Supervision::new(store.clone(), CapabilitySet::parse(["payments:*"]).unwrap())
            .lifetime(Duration::from_secs(300));

    async fn pay(
        State(supervision): State<Supervision<MemoryStore>>,
        principal: Principal,
        Json(body): Json<Value>,
    ) -> Result<StatusCode, ApprovalRejection> {
        let action = CriticalAction::new("payments:send", &http::Method::POST, "/payments")
            .details(body.clone())
            .message(format!(
                "Pay {} EUR to {}",
                body["amount"],
                body["to"].as_str().unwrap_or("?")
            ));
        supervision.check(&principal, &action).await?;
        Ok(StatusCode::CREATED)
    }

    let directory: Arc<dyn UserDirectory> = Arc::new(users);
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let router = Router::new()
        .route("/payments", post(pay))
        .with_state(supervision)
        .merge(
            Pages::new(ManageState {
                store: store.clone(),
                audit: None,
            })
            .router(),
        )
        .layer(
            AgentAuthLayer::new(store.clone())
                .optional()
                .with_session_resolver(sessions.clone()),
        );
    App {
        router,
        store,
        sessions,
        token,
        payer: payer.id,
        hidden: hidden.id,
    }
}

/// A signed-in person: the session cookie, and the token of their forms.
struct Person {
    cookie: String,
    form_token: String,
}

async fn person(app: &App, user: &str) -> Person {
    let secret = app.sessions.start(UserId::from(user)).await.unwrap();
    Person {
        cookie: format!("{SESSION_COOKIE}={secret}"),
        form_token: FormToken::for_secret(&secret).as_str().to_owned(),
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    text: String,
}

async fn send(app: &App, request: Request<Body>) -> Answer {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &App, who: &Person, path: &str) -> Answer {
    let request = Request::get(path)
        .header(header::COOKIE, &who.cookie)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

/// A form post as a browser sends it from the page: `token` in the `csrf` field, if any.
async fn post_form(app: &App, who: &Person, path: &str, token: Option<&str>) -> Answer {
    let body = token.map_or_else(String::new, |t| format!("csrf={t}"));
    let request = Request::post(path)
        .header(header::COOKIE, &who.cookie)
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(app, request).await
}

/// `payer` pays: 201, or the id of the approval it waits for.
async fn pay(app: &App, body: Value) -> Result<StatusCode, ApprovalId> {
    let request = Request::post("/payments")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = send(app, request).await;
    if answer.status != StatusCode::FORBIDDEN {
        return Ok(answer.status);
    }
    let body: Value = serde_json::from_str(&answer.text).unwrap();
    Err(ApprovalId::from(
        body["approval_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}")),
    ))
}

async fn status_of(app: &App, id: &ApprovalId) -> ApprovalStatus {
    let now = time::OffsetDateTime::now_utc();
    app.store
        .approval(id)
        .await
        .unwrap()
        .unwrap()
        .status_at(now)
}

/// `text` as the templates escape it (askama: decimal character references).
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn payment(amount: u64, to: &str) -> Value {
    json!({"type": "payment", "amount": amount, "currency": "EUR", "to": to})
}

#[tokio::test]
async fn the_owner_approves_and_denies_through_the_pages_forms() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let first = pay(&app, payment(50, "ACME")).await.unwrap_err();

    let page = get(&app, &alice, "/approvals").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["x-frame-options"], "DENY");
    for shown in [
        first.as_str(),
        "Pay 50 EUR to ACME",
        "payments:send",
        "POST /payments",
        escaped("\"currency\": \"EUR\"").as_str(),
        "acting for alice",
        "(in 4 min)",
        "No approval decided or expired yet.",
    ] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    let approve = format!("action=\"/approvals/{first}/approve\"");
    assert!(page.text.contains(&approve), "{}", page.text);
    assert!(
        page.text
            .contains(&format!("name=\"csrf\" value=\"{}\"", alice.form_token))
    );

    // Without the form's token, or with another session's, nothing is decided.
    let path = format!("/approvals/{first}/approve");
    let forged = post_form(&app, &alice, &path, None).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let other = person(&app, "alice").await;
    let forged = post_form(&app, &alice, &path, Some(&other.form_token)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, &first).await, ApprovalStatus::Pending);

    let approved = post_form(&app, &alice, &path, Some(&alice.form_token)).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.text);
    assert_eq!(
        approved.headers[header::LOCATION],
        "/approvals?done=approved"
    );
    assert_eq!(
        pay(&app, payment(50, "ACME")).await,
        Ok(StatusCode::CREATED)
    );
    let again = post_form(&app, &alice, &path, Some(&alice.form_token)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "decided already");

    let second = pay(&app, payment(70, "Globex")).await.unwrap_err();
    let denied = post_form(
        &app,
        &alice,
        &format!("/approvals/{second}/deny"),
        Some(&alice.form_token),
    )
    .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    assert_eq!(denied.headers[header::LOCATION], "/approvals?done=denied");
    assert_eq!(status_of(&app, &second).await, ApprovalStatus::Denied);
    assert_eq!(
        pay(&app, payment(70, "Globex")).await,
        Err(second.clone()),
        "refused while the denial stands"
    );

    let page = get(&app, &alice, "/approvals?done=denied").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Denied: the agent"), "{}", page.text);
    assert!(page.text.contains("Nothing is waiting for a decision."));
    // The history, newest first: who decided, and how each ended.
    let denied_at = page.text.find("Pay 70 EUR to Globex").unwrap();
    let used_at = page.text.find("Pay 50 EUR to ACME").unwrap();
    assert!(denied_at < used_at, "{}", page.text);
    assert!(
        page.text
            .contains("<span class=\"status used\">used</span>")
    );
    assert!(
        page.text
            .contains("<span class=\"status denied\">denied</span>")
    );
    assert_eq!(
        page.text.matches("<td>alice</td>").count(),
        2,
        "{}",
        page.text
    );
    // A notice comes from a fixed list, never from the URL.
    let page = get(&app, &alice, "/approvals?done=%3Cb%3Ehello").await;
    assert!(!page.text.contains("hello") && !page.text.contains("notice ok"));
    let bad = get(&app, &alice, "/approvals?page=0").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn who_may_not_decide_sees_no_buttons_and_is_refused() {
    let app = app().await;
    let id = pay(&app, payment(50, "ACME")).await.unwrap_err();
    let approve = format!("/approvals/{id}/approve");

    let adam = person(&app, "adam").await;
    let page = get(&app, &adam, "/approvals").await;
    assert!(
        page.text.contains(&format!("action=\"{approve}\"")),
        "admin decides"
    );

    for user in ["vera", "otto"] {
        let who = person(&app, user).await;
        let page = get(&app, &who, "/approvals").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("Pay 50 EUR to ACME"), "{user} sees it");
        assert!(!page.text.contains("/approve\""), "{user}: {}", page.text);
        assert!(!page.text.contains("/deny\""), "{user}: {}", page.text);
        assert!(
            page.text
                .contains("Only the agent's owner or an admin may decide.")
        );
        for path in [approve.clone(), format!("/approvals/{id}/deny")] {
            let refused = post_form(&app, &who, &path, Some(&who.form_token)).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{user} {path}");
            assert!(refused.text.contains("Not allowed"), "{}", refused.text);
        }
    }
    // A stranger sees nothing of it, and learns nothing from its id.
    let mallory = person(&app, "mallory").await;
    let page = get(&app, &mallory, "/approvals").await;
    assert!(!page.text.contains("ACME") && !page.text.contains(id.as_str()));
    let refused = post_form(&app, &mallory, &approve, Some(&mallory.form_token)).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let refused = post_form(
        &app,
        &mallory,
        "/approvals/%3Cscript%3E/approve",
        Some(&mallory.form_token),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, &id).await, ApprovalStatus::Pending);
}

#[tokio::test]
async fn the_poll_route_answers_new_approvals() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let empty = get(&app, &alice, "/approvals/pending").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.text.contains("Nothing is waiting"), "{}", empty.text);
    assert!(!empty.text.contains("<html"), "a fragment, not a page");
    assert_eq!(empty.headers[header::CACHE_CONTROL], "no-store");

    let id = pay(&app, payment(50, "ACME")).await.unwrap_err();
    let listed = get(&app, &alice, "/approvals/pending").await;
    assert!(listed.text.contains(&format!("data-approval=\"{id}\"")));
    assert!(listed.text.contains("Pay 50 EUR to ACME"));
    assert!(listed.text.contains(&alice.form_token), "its forms work");
    // The page names the route the script polls.
    let page = get(&app, &alice, "/approvals").await;
    assert!(page.text.contains("data-poll=\"/approvals/pending\""));

    // Nobody signed in: sent to sign in, nothing listed.
    let request = Request::get("/approvals/pending")
        .body(Body::empty())
        .unwrap();
    let anonymous = send(&app, request).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(!anonymous.text.contains("ACME"));
}

#[tokio::test]
async fn markup_in_details_and_message_is_escaped() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let script = "<script>window.pwned=1</script>";
    let img = "\"><img src=x onerror=window.pwned=1>";
    let id = pay(
        &app,
        json!({"amount": 5, "to": script, "note": img, "<b>key</b>": script}),
    )
    .await
    .unwrap_err();
    for path in ["/approvals", "/approvals/pending"] {
        let page = get(&app, &alice, path).await;
        assert!(page.text.contains(id.as_str()), "{path}");
        assert!(!page.text.contains("<script>"), "{path}: {}", page.text);
        assert!(!page.text.contains("<img"), "{path}: {}", page.text);
        assert!(!page.text.contains("<b>"), "{path}: {}", page.text);
        assert!(
            page.text
                .contains(&escaped(&format!("Pay 5 EUR to {script}")))
        );
        assert!(
            page.text
                .contains(&escaped("<img src=x onerror=window.pwned=1>"))
        );
    }
    // Decided, it is in the history: escaped there too.
    let path = format!("/approvals/{id}/deny");
    let denied = post_form(&app, &alice, &path, Some(&alice.form_token)).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let page = get(&app, &alice, "/approvals").await;
    assert!(page.text.contains(&escaped(script)), "{}", page.text);
    assert!(!page.text.contains("<script>"));
}

/// At `n` seconds past a fixed instant.
fn at(n: i64) -> time::OffsetDateTime {
    time::macros::datetime!(2026-03-01 12:00 UTC) + time::Duration::seconds(n)
}

/// 120 events of `payer` a second apart (every third denied, every fifth an approval
/// granted, some refused), one with markup in its detail, and 5 of mallory's `hidden`.
async fn trail(app: &App) {
    let mut events = Vec::new();
    for n in 0..120 {
        let (action, outcome) = match n {
            _ if n % 3 == 0 => (AuditAction::Request, Outcome::Denied),
            _ if n % 5 == 0 => (AuditAction::ApprovalGranted, Outcome::Success),
            _ if n % 7 == 0 => (
                AuditAction::TokenRefused,
                Outcome::Refused(InvalidReason::Revoked),
            ),
            _ => (AuditAction::Request, Outcome::Success),
        };
        let mut event = AuditEvent::new(at(n), action, outcome)
            .agent(app.payer.clone())
            .task_id(Some(format!("task-{n}")))
            .detail(format!("event {n:03}"));
        if n == 119 {
            event = event.detail("<script>window.pwned=1</script>");
        }
        events.push(event);
    }
    for n in 0..5 {
        events.push(
            AuditEvent::new(at(n), AuditAction::Request, Outcome::Success)
                .agent(app.hidden.clone())
                .detail(format!("hidden {n}")),
        );
    }
    app.store.write_batch(&events).await.unwrap();
}

/// The details of the events a page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("<div>event ")
        .skip(1)
        .map(|rest| rest[..3].to_owned())
        .collect()
}

#[tokio::test]
async fn the_audit_page_filters_and_pages() {
    let app = app().await;
    trail(&app).await;
    let alice = person(&app, "alice").await;

    let first = get(&app, &alice, "/audit").await;
    assert_eq!(first.status, StatusCode::OK);
    // Newest first, 50 a page: 119 (the script, escaped) then 118 down to 70.
    assert!(
        first
            .text
            .contains(&escaped("<script>window.pwned=1</script>"))
    );
    assert!(!first.text.contains("<script>"));
    let shown = listed(&first.text);
    assert_eq!(shown.len(), 49, "{shown:?}");
    assert_eq!((shown[0].as_str(), shown[48].as_str()), ("118", "070"));
    assert!(!first.text.contains("<div>hidden "), "not alice's to read");
    assert!(first.text.contains("task <code>task-118</code>"));
    assert!(
        first
            .text
            .contains("<span class=\"status refused\">refused</span>")
    );
    assert!(
        first.text.contains("<div>revoked</div>"),
        "the refusal's reason"
    );
    assert!(first.text.contains("href=\"/audit?page=2\""), "older");
    assert!(!first.text.contains("Newer"));

    let third = get(&app, &alice, "/audit?page=3").await;
    let shown = listed(&third.text);
    assert_eq!(shown.len(), 20);
    assert_eq!((shown[0].as_str(), shown[19].as_str()), ("019", "000"));
    assert!(third.text.contains("href=\"/audit?page=2\""), "newer");
    assert!(!third.text.contains("Older"));

    let denied = get(&app, &alice, "/audit?agent=payer&outcome=denied").await;
    let shown = listed(&denied.text);
    assert_eq!(shown.len(), 40);
    assert!(shown.iter().all(|n| n.parse::<u32>().unwrap() % 3 == 0));
    assert!(denied.text.contains("<option value=\"denied\" selected>"));
    assert!(denied.text.contains("<option value=\"payer\" selected>"));

    let granted = get(
        &app,
        &alice,
        "/audit?action=approval_granted&since=2026-03-01+12:01",
    )
    .await;
    let shown = listed(&granted.text);
    // Granted: n % 5 == 0 and not n % 3 == 0, from n = 60 on.
    let expected: Vec<String> = (60..120)
        .rev()
        .filter(|n| n % 5 == 0 && n % 3 != 0)
        .map(|n| format!("{n:03}"))
        .collect();
    assert_eq!(shown, expected, "{}", granted.text);

    let window = get(
        &app,
        &alice,
        "/audit?since=2026-03-01T12:00:10Z&until=2026-03-01+12:00&outcome=success",
    )
    .await;
    assert_eq!(window.status, StatusCode::OK);
    assert!(listed(&window.text).is_empty(), "until before since");

    for (query, problem) in [
        ("agent=hidden", "agent: not one whose trail you may read"),
        ("outcome=maybe", "outcome: success, refused or denied"),
        ("action=%3Cscript%3E", "action: not an action"),
        ("since=yesterday", "since: a duration ago"),
        ("page=500", "page: 1 to"),
    ] {
        let bad = get(&app, &alice, &format!("/audit?{query}")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(bad.text.contains(problem), "{query}: {}", bad.text);
        assert!(listed(&bad.text).is_empty());
    }

    // An operator reads the trail; a viewer may see the agent but not its trail.
    let vera = person(&app, "vera").await;
    assert_eq!(listed(&get(&app, &vera, "/audit").await.text).len(), 49);
    let otto = person(&app, "otto").await;
    let page = get(&app, &otto, "/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("No agent whose trail you may read"));
    let refused = get(&app, &otto, "/audit?agent=payer").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(listed(&refused.text).is_empty());
    // Mallory reads her own agent's trail, and only that.
    let mallory = person(&app, "mallory").await;
    let page = get(&app, &mallory, "/audit").await;
    assert_eq!(
        page.text.matches("<div>hidden ").count(),
        5,
        "{}",
        page.text
    );
    assert!(listed(&page.text).is_empty());
}

/// The store's filters by action and outcome, which the page relies on.
#[tokio::test]
async fn the_trail_is_filtered_by_action_and_outcome_in_the_store() {
    use tower_agent_auth::audit::{AuditFilter, AuditQuery};
    let app = app().await;
    trail(&app).await;
    let filter = AuditFilter::agent(app.payer.clone())
        .action(AuditAction::TokenRefused)
        .outcome(Outcome::Refused(InvalidReason::Unknown));
    let events = app.store.events(&filter).await.unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.action == AuditAction::TokenRefused
        && e.outcome == Outcome::Refused(InvalidReason::Revoked)));
}
