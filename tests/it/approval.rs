//! The human-approval gate in front of a real `axum::Router` (and a `ServiceBuilder` stack):
//! who waits, what a refusal says, what an approval admits and how often, and who may decide —
//! through the library and through the management API.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::approval::{
    ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalNotifier, ApprovalRejection,
    ApprovalStatus, CriticalAction, Supervision,
};
use tower_agent_auth::audit::{AuditAction, AuditFilter, AuditQuery, AuditWriter, WriterOptions};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::clock::{Clock, ManualClock};
use tower_agent_auth::error::{Conflict, NotFound, StoreError};
use tower_agent_auth::principal::AgentId;
use tower_agent_auth::server::{ManageState, approvals_router};
use tower_agent_auth::store::{
    AccessRole, AgentType, Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken,
    UserRecord,
};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{AgentAuthLayer, Principal};

use crate::common::CookieSessions;

/// Counts the approvals it was told about; fails every time when `fail` is set.
#[derive(Clone, Default)]
struct Counter {
    told: Arc<AtomicUsize>,
    fail: bool,
}

#[async_trait::async_trait]
impl ApprovalNotifier for Counter {
    async fn notify(
        &self,
        approval: &tower_agent_auth::approval::Approval,
    ) -> Result<(), tower_agent_auth::error::BoxError> {
        assert_eq!(approval.status, ApprovalStatus::Pending);
        self.told.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err("the chat service is down".into());
        }
        Ok(())
    }
}

struct App {
    router: Router,
    store: MemoryStore,
    clock: Arc<ManualClock>,
    writer: AuditWriter,
    told: Arc<AtomicUsize>,
    /// A supervised agent's token, and the agent.
    supervised: (String, AgentId),
    /// An autonomous agent's token.
    autonomous: String,
    /// A supervised agent whose policy does not reach payments.
    narrow: String,
}

/// alice (owns the agents), adam (admin grant on `payer`), vera (operator grant), mallory
/// (nothing); `POST /payments` and `POST /payments/urgent` pay through the gate, `POST /posts`
/// uses a capability that is not critical.
async fn app_with(notifier: Counter) -> App {
    let users = MemoryUserDirectory::new();
    for user in ["alice", "adam", "vera", "mallory"] {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone())
        .with_clock(clock.clone());
    let token = |slug: &'static str, kind: AgentType, policy: Policy| {
        let store = store.clone();
        async move {
            let agent = store
                .create_agent(
                    NewAgent::new(slug, "alice")
                        .with_type(kind)
                        .with_policy(policy),
                )
                .await
                .unwrap();
            let issued = store
                .create_token(&agent.id, NewToken::new("t"))
                .await
                .unwrap();
            (issued.token.expose_secret().to_owned(), agent.id)
        }
    };
    let supervised = token("payer", AgentType::Supervised, Policy::unrestricted()).await;
    let autonomous = token("robot", AgentType::Autonomous, Policy::unrestricted())
        .await
        .0;
    let narrow = token(
        "reader",
        AgentType::Supervised,
        Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap()),
    )
    .await
    .0;
    store
        .grant(&supervised.1, &"adam".into(), AccessRole::Admin)
        .await
        .unwrap();
    store
        .grant(&supervised.1, &"vera".into(), AccessRole::Operator)
        .await
        .unwrap();
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let told = notifier.told.clone();
    let supervision =
        Supervision::new(store.clone(), CapabilitySet::parse(["payments:*"]).unwrap())
            .lifetime(Duration::from_secs(300))
            .notifier(notifier)
            .audit(writer.clone())
            .clock(clock.clone());

    async fn pay(
        State(supervision): State<Supervision<MemoryStore>>,
        principal: Principal,
        uri: http::Uri,
        Json(body): Json<Value>,
    ) -> Result<StatusCode, ApprovalRejection> {
        let action = CriticalAction::new("payments:send", &http::Method::POST, uri.path())
            .details(body.clone())
            .message(format!(
                "Pay {} EUR to {}",
                body["amount"],
                body["to"].as_str().unwrap_or("?")
            ));
        supervision.check(&principal, &action).await?;
        Ok(StatusCode::CREATED)
    }
    async fn publish(
        State(supervision): State<Supervision<MemoryStore>>,
        principal: Principal,
    ) -> Result<StatusCode, ApprovalRejection> {
        let action = CriticalAction::new("posts:publish", &http::Method::POST, "/posts");
        supervision.check(&principal, &action).await?;
        Ok(StatusCode::CREATED)
    }
    let router = Router::new()
        .route("/payments", post(pay))
        .route("/payments/urgent", post(pay))
        .route("/posts", post(publish))
        .with_state(supervision)
        .merge(approvals_router(ManageState {
            store: store.clone(),
            audit: Some(writer.clone()),
        }))
        .layer(
            AgentAuthLayer::new(store.clone())
                .optional()
                .with_session_resolver(CookieSessions(users)),
        );
    App {
        router,
        store,
        clock,
        writer,
        told,
        supervised,
        autonomous,
        narrow,
    }
}

async fn app() -> App {
    app_with(Counter::default()).await
}

const FIFTY: &str = r#"{"type": "payment", "amount": 50, "currency": "EUR", "to": "ACME"}"#;

/// An answer: status, headers, JSON body.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Answer {
    fn approval_id(&self) -> ApprovalId {
        ApprovalId::from(
            self.body["approval_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", self.body)),
        )
    }
}

async fn send(app: &App, request: Request<Body>) -> Answer {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn pay_at(app: &App, path: &str, token: &str, body: &str) -> Answer {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(app, request).await
}

async fn pay(app: &App, body: &str) -> Answer {
    pay_at(app, "/payments", &app.supervised.0, body).await
}

/// A call of the management API as `user` (signed in by the test's cookie sessions).
async fn api(app: &App, method: &str, path: &str, user: &str, body: Option<Value>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", format!("session={user}"))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    send(app, request).await
}

#[tokio::test]
async fn people_agents_not_supervised_and_capabilities_not_critical_never_wait() {
    let app = app().await;
    assert_eq!(
        pay_at(&app, "/payments", &app.autonomous, FIFTY)
            .await
            .status,
        StatusCode::CREATED
    );
    let session = Request::post("/payments")
        .header("cookie", "session=alice")
        .header("content-type", "application/json")
        .body(Body::from(FIFTY))
        .unwrap();
    assert_eq!(send(&app, session).await.status, StatusCode::CREATED);
    let publish = Request::post("/posts")
        .header("authorization", format!("Bearer {}", app.supervised.0))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, publish).await.status, StatusCode::CREATED);
    assert!(
        app.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.told.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_capability_outside_the_ceiling_is_insufficient_scope_not_an_approval() {
    let app = app().await;
    let refused = pay_at(&app, "/payments", &app.narrow, FIFTY).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"], "insufficient_scope");
    assert!(refused.headers.get("approval-id").is_none());
    assert!(
        app.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_critical_request_is_refused_with_an_approval_and_a_retry_names_the_same_one() {
    let app = app().await;
    let refused = pay(&app, FIFTY).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"], "approval_required");
    assert_eq!(refused.body["binding_message"], "Pay 50 EUR to ACME");
    let id = refused.approval_id();
    assert!(id.as_str().starts_with("apr_"));
    assert_eq!(refused.headers["approval-id"], id.as_str());
    assert_eq!(
        refused.headers["www-authenticate"],
        format!("Bearer error=\"approval_required\", approval_id=\"{id}\"").as_str()
    );
    let expires = time::OffsetDateTime::parse(
        refused.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // RFC 3339 to the second at least: the lifetime from now, give or take the fraction.
    let left = expires - app.clock.now();
    assert!(
        left > time::Duration::seconds(299) && left <= time::Duration::seconds(300),
        "{left}"
    );

    let again = pay(&app, FIFTY).await;
    assert_eq!(
        (again.status, again.approval_id()),
        (StatusCode::FORBIDDEN, id.clone())
    );
    let stored = app
        .store
        .list_approvals(&ApprovalFilter::all())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "no duplicates");
    assert_eq!(stored[0].details.as_ref().unwrap()["amount"], 50);
    assert_eq!(stored[0].path, "/payments");
    assert_eq!(stored[0].capability, "payments:send");
    assert_eq!(app.told.load(Ordering::SeqCst), 1, "told once");
}

#[tokio::test]
async fn an_approval_admits_the_request_exactly_once_then_a_new_one_is_asked() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    Managed::new(&app.store, "alice")
        .approve(&id, ApprovalBounds::default())
        .await
        .unwrap();
    assert_eq!(pay(&app, FIFTY).await.status, StatusCode::CREATED);
    let next = pay(&app, FIFTY).await;
    assert_eq!(next.status, StatusCode::FORBIDDEN);
    assert_eq!(next.body["error"], "approval_required");
    assert_ne!(next.approval_id(), id, "spent: a new approval");

    app.writer.shutdown().await;
    let actions: Vec<AuditAction> = app
        .store
        .events(&AuditFilter::agent(app.supervised.1.clone()))
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            assert!(e.token.is_some(), "{e:?}");
            assert!(e.detail.as_deref().unwrap_or("").contains("apr_"), "{e:?}");
            e.action
        })
        .filter(|a| a.as_str().starts_with("approval_"))
        .collect();
    assert_eq!(
        actions,
        [
            AuditAction::ApprovalRequested,
            AuditAction::ApprovalUsed,
            AuditAction::ApprovalRequested
        ]
    );
}

#[tokio::test]
async fn a_denied_approval_refuses_until_it_expires() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    Managed::new(&app.store, "adam").deny(&id).await.unwrap();
    let denied = pay(&app, FIFTY).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.body["error"], "approval_denied");
    assert_eq!(denied.approval_id(), id);
    assert_eq!(
        denied.headers["www-authenticate"],
        format!("Bearer error=\"approval_denied\", approval_id=\"{id}\"").as_str()
    );
    app.clock.advance(Duration::from_secs(300));
    let asked = pay(&app, FIFTY).await;
    assert_eq!(asked.body["error"], "approval_required");
    assert_ne!(asked.approval_id(), id);
}

#[tokio::test]
async fn an_expired_approval_is_replaced_by_a_new_one() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    app.clock.advance(Duration::from_secs(299));
    assert_eq!(pay(&app, FIFTY).await.approval_id(), id, "still pending");
    app.clock.advance(Duration::from_secs(1));
    let late = Managed::new(&app.store, "alice")
        .approve(&id, ApprovalBounds::default())
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::Conflict(Conflict::ApprovalNotPending {
                status: "expired",
                ..
            }))
        ),
        "{late:?}"
    );
    let renewed = pay(&app, FIFTY).await;
    assert_eq!(renewed.body["error"], "approval_required");
    assert_ne!(renewed.approval_id(), id);
    // Approved, then expired unused: admits nothing.
    Managed::new(&app.store, "alice")
        .approve(&renewed.approval_id(), ApprovalBounds::default())
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(300));
    assert_eq!(pay(&app, FIFTY).await.body["error"], "approval_required");
}

#[tokio::test]
async fn an_approval_admits_only_the_request_it_was_asked_for() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    Managed::new(&app.store, "alice")
        .approve(&id, ApprovalBounds::default())
        .await
        .unwrap();
    let more = r#"{"type": "payment", "amount": 51, "currency": "EUR", "to": "ACME"}"#;
    let other_details = pay(&app, more).await;
    assert_eq!(other_details.body["error"], "approval_required");
    assert_ne!(other_details.approval_id(), id);
    let other_path = pay_at(&app, "/payments/urgent", &app.supervised.0, FIFTY).await;
    assert_eq!(other_path.body["error"], "approval_required");
    // The same details in another key order are the same details.
    let reordered = r#"{"to": "ACME", "currency": "EUR", "amount": 50, "type": "payment"}"#;
    assert_eq!(pay(&app, reordered).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn only_the_owner_or_an_admin_decides() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    // Vera sees it but may not decide; to mallory, who may not see it, it does not exist.
    for user in ["vera", "mallory"] {
        let expected = |refused: &Result<_, StoreError>| match user {
            "vera" => matches!(refused, Err(StoreError::Forbidden { .. })),
            _ => matches!(refused, Err(StoreError::NotFound(NotFound::Approval(_)))),
        };
        let refused = Managed::new(&app.store, user)
            .approve(&id, ApprovalBounds::default())
            .await;
        assert!(expected(&refused), "{user}: {refused:?}");
        let refused = Managed::new(&app.store, user).deny(&id).await;
        assert!(expected(&refused), "{user}: {refused:?}");
    }
    assert_eq!(
        app.store.approval(&id).await.unwrap().unwrap().status,
        ApprovalStatus::Pending,
        "unchanged"
    );
    let approved = Managed::new(&app.store, "adam")
        .approve(&id, ApprovalBounds::default().uses(2))
        .await
        .unwrap();
    assert_eq!(approved.decided_by, Some("adam".into()));
    for _ in 0..2 {
        assert_eq!(pay(&app, FIFTY).await.status, StatusCode::CREATED);
    }
    assert_eq!(pay(&app, FIFTY).await.body["error"], "approval_required");
    // Vera sees it (operator), Mallory does not.
    assert_eq!(
        Managed::new(&app.store, "vera")
            .approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        Managed::new(&app.store, "mallory")
            .approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_management_api_lists_approves_and_denies_for_those_allowed() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    let listed = api(&app, "GET", "/api/approvals?status=pending", "vera", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body[0]["id"], id.as_str());
    assert_eq!(listed.body[0]["agent"], "payer");
    assert_eq!(listed.body[0]["details"]["currency"], "EUR");
    let hidden = api(&app, "GET", "/api/approvals", "mallory", None).await;
    assert_eq!(
        hidden.body,
        json!([]),
        "only approvals of agents one may see"
    );
    let one = api(
        &app,
        "GET",
        &format!("/api/approvals/{id}"),
        "mallory",
        None,
    )
    .await;
    // A stranger learns nothing from an id: the same 404 as for an id that names none, not
    // the agent's slug.
    assert_eq!(one.status, StatusCode::NOT_FOUND, "{}", one.body);
    assert!(!one.body.to_string().contains("payer"), "{}", one.body);
    for (method, path) in [
        ("POST", format!("/api/approvals/{id}/approve")),
        ("POST", format!("/api/approvals/{id}/deny")),
        ("POST", format!("/api/approvals/{id}/revoke")),
    ] {
        let hidden = api(&app, method, &path, "mallory", Some(json!({}))).await;
        assert_eq!(
            hidden.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            hidden.body
        );
        assert!(
            !hidden.body.to_string().contains("payer"),
            "{}",
            hidden.body
        );
    }
    let missing = api(&app, "GET", "/api/approvals/apr_0000", "alice", None).await;
    assert_eq!(
        (missing.status, missing.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let path = format!("/api/approvals/{id}/approve");
    let refused = api(&app, "POST", &path, "vera", Some(json!({}))).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let bad = api(&app, "POST", &path, "adam", Some(json!({"uses": 0}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let unknown = api(&app, "POST", &path, "adam", Some(json!({"usess": 2}))).await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    let approved = api(
        &app,
        "POST",
        &path,
        "adam",
        Some(json!({"uses": 2, "valid_for": "10m"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["uses_remaining"], 2);
    assert_eq!(approved.body["decided_by"], "adam");
    let twice = api(&app, "POST", &path, "adam", Some(json!({}))).await;
    assert_eq!(
        (twice.status, twice.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    assert_eq!(pay(&app, FIFTY).await.status, StatusCode::CREATED);

    let other = pay(&app, r#"{"amount": 9, "to": "Bob"}"#)
        .await
        .approval_id();
    let denied = api(
        &app,
        "POST",
        &format!("/api/approvals/{other}/deny"),
        "alice",
        None,
    )
    .await;
    assert_eq!(
        (denied.status, denied.body["status"].as_str()),
        (StatusCode::OK, Some("denied"))
    );
    assert_eq!(
        pay(&app, r#"{"amount": 9, "to": "Bob"}"#).await.body["error"],
        "approval_denied"
    );
    let by_agent = Request::get("/api/approvals")
        .header("authorization", format!("Bearer {}", app.supervised.0))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, by_agent).await.status,
        StatusCode::FORBIDDEN,
        "agents do not approve"
    );

    app.writer.shutdown().await;
    let events = app
        .store
        .events(&AuditFilter::agent(app.supervised.1.clone()))
        .await
        .unwrap();
    let granted: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::ApprovalGranted)
        // Mallory's attempt (answered 404) is recorded too.
        .filter(|e| e.actor != Some("mallory".into()))
        .collect();
    assert_eq!(
        granted.len(),
        2,
        "vera's refusal and adam's approval: {granted:?}"
    );
    assert_eq!(granted[0].actor, Some("vera".into()));
    assert_eq!(granted[0].outcome.as_str(), "denied");
    let attempted = granted[0].detail.as_deref().unwrap_or_default();
    assert!(
        attempted.contains(id.as_str()),
        "the refusal names the approval attempted: {attempted}"
    );
    assert_eq!(granted[1].actor, Some("adam".into()));
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::ApprovalDenied && e.actor == Some("alice".into()))
    );
}

#[tokio::test]
async fn a_failing_notifier_does_not_fail_the_request() {
    let app = app_with(Counter {
        fail: true,
        ..Counter::default()
    })
    .await;
    let refused = pay(&app, FIFTY).await;
    assert_eq!(refused.body["error"], "approval_required");
    assert_eq!(app.told.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_message_with_hidden_characters_is_a_bad_request_and_asks_nothing() {
    let app = app().await;
    let sneaky = r#"{"amount": 50, "to": "ACME\u202e"}"#;
    let refused = pay(&app, sneaky).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "invalid_request");
    assert!(
        app.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The gate in a plain tower stack: a `service_fn` behind `AgentAuthLayer`.
#[tokio::test]
async fn the_gate_works_in_a_service_builder_stack() {
    let app = app().await;
    let supervision = Supervision::new(
        app.store.clone(),
        CapabilitySet::parse(["payments:send"]).unwrap(),
    )
    .clock(app.clock.clone());
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(app.store.clone()))
        .service_fn(move |request: Request<String>| {
            let supervision = supervision.clone();
            async move {
                let principal = request.extensions().get::<Principal>().unwrap().clone();
                let action =
                    CriticalAction::new("payments:send", request.method(), request.uri().path())
                        .details(json!({"amount": 5}));
                let response = match supervision.check(&principal, &action).await {
                    Ok(()) => http::Response::new(String::new()),
                    Err(rejection) => rejection.to_response(),
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
    let call = |token: String| {
        let service = service.clone();
        async move {
            let request = Request::post("/pay")
                .header("authorization", format!("Bearer {token}"))
                .body(String::new())
                .unwrap();
            service.oneshot(request).await.unwrap()
        }
    };
    assert_eq!(call(app.autonomous.clone()).await.status(), StatusCode::OK);
    let refused = call(app.supervised.0.clone()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let id = ApprovalId::from(refused.headers()["approval-id"].to_str().unwrap());
    let asked = app.store.approval(&id).await.unwrap().unwrap();
    assert_eq!(
        asked.binding_message, "POST /pay (payments:send)",
        "the default message"
    );
    Managed::new(&app.store, "alice")
        .approve(&id, ApprovalBounds::default())
        .await
        .unwrap();
    assert_eq!(
        call(app.supervised.0.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(app.supervised.0.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_approval_given_can_be_revoked_and_then_admits_nothing() {
    let app = app().await;
    let id = pay(&app, FIFTY).await.approval_id();
    // Not yet approved: nothing to revoke.
    let early = api(
        &app,
        "POST",
        &format!("/api/approvals/{id}/revoke"),
        "alice",
        None,
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    let approved = api(
        &app,
        "POST",
        &format!("/api/approvals/{id}/approve"),
        "alice",
        Some(json!({"uses": 5, "valid_for": "1d"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(pay(&app, FIFTY).await.status, StatusCode::CREATED);
    // Vera (operator) may not revoke, mallory not even see.
    for user in ["vera", "mallory"] {
        let refused = Managed::new(&app.store, user).revoke_approval(&id).await;
        assert!(refused.is_err(), "{user}: {refused:?}");
    }
    let revoked = api(
        &app,
        "POST",
        &format!("/api/approvals/{id}/revoke"),
        "adam",
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["status"], "denied");
    let retry = pay(&app, FIFTY).await;
    assert_eq!(retry.status, StatusCode::FORBIDDEN);
    assert_eq!(retry.body["error"], "approval_denied", "{}", retry.body);
    let again = api(
        &app,
        "POST",
        &format!("/api/approvals/{id}/revoke"),
        "alice",
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    app.writer.shutdown().await;
    let events = app
        .store
        .events(&AuditFilter::agent(app.supervised.1.clone()))
        .await
        .unwrap();
    let revocations: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::ApprovalRevoked && e.outcome.as_str() == "success")
        .collect();
    assert_eq!(revocations.len(), 1, "{events:?}");
    assert_eq!(revocations[0].actor, Some("adam".into()));
    assert!(
        revocations[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(id.as_str()) && d.contains("4 use(s) unspent")),
        "{:?}",
        revocations[0].detail
    );
}

/// Payees that look like "ACME" but are not: the person would read "Pay 50 EUR to ACME".
#[tokio::test]
async fn a_look_alike_message_is_a_bad_request_and_asks_nothing() {
    let app = app().await;
    let padded = format!("ACME{}x", " ".repeat(35));
    for to in [
        "ACME\u{00a0}",
        "ACME\u{3000}",
        "ACME\u{2800}",
        " ACME",
        "ACME ",
        padded.as_str(),
        "AC\u{2009}ME",
        "AC\u{3164}ME",
        "AC\tME",
    ] {
        let body = json!({"amount": 50, "to": to}).to_string();
        let refused = pay(&app, &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{to:?}");
        assert_eq!(refused.body["error"], "invalid_request", "{to:?}");
    }
    assert!(
        app.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    // A single space between words is fine.
    let plain = json!({"amount": 50, "to": "ACME Corp"}).to_string();
    assert_eq!(pay(&app, &plain).await.body["error"], "approval_required");
}

#[tokio::test]
async fn approving_needs_no_body() {
    let app = app().await;
    let path = |id: &ApprovalId| format!("/api/approvals/{id}/approve");
    // No body, no content type.
    let id = pay(&app, FIFTY).await.approval_id();
    let request = Request::post(path(&id))
        .header("cookie", "session=alice")
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap();
    let approved = send(&app, request).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["uses"], 1, "{}", approved.body);
    assert_eq!(pay(&app, FIFTY).await.status, StatusCode::CREATED);
    // A JSON content type and an empty body.
    let id = pay(&app, FIFTY).await.approval_id();
    let approved = api(&app, "POST", &path(&id), "alice", None).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    // A body still must be JSON of known fields.
    let id = pay(&app, FIFTY).await;
    let id = if id.status == StatusCode::CREATED {
        pay(&app, FIFTY).await.approval_id()
    } else {
        id.approval_id()
    };
    let request = Request::post(path(&id))
        .header("cookie", "session=alice")
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(Body::from("{\"usess\": 2}"))
        .unwrap();
    assert_eq!(
        send(&app, request).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// A thread-scoped child of the supervised payer pays only once a person approves, as the
/// payer itself does.
#[tokio::test]
async fn a_child_of_a_supervised_agent_waits_for_an_approval_too() {
    let app = app().await;
    let child = app
        .store
        .create_agent(NewAgent::child("payer-t1", app.supervised.1.clone()))
        .await
        .unwrap();
    assert_eq!(child.agent_type, AgentType::Supervised);
    let token = app
        .store
        .create_token(&child.id, NewToken::new("t1"))
        .await
        .unwrap();
    let refused = pay_at(&app, "/payments", token.token.expose_secret(), FIFTY).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["error"], "approval_required");
    Managed::new(&app.store, "alice")
        .approve(&refused.approval_id(), ApprovalBounds::default())
        .await
        .unwrap();
    let paid = pay_at(&app, "/payments", token.token.expose_secret(), FIFTY).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
}

/// A lifetime out of range is the host's configuration: clamped to one second to a day by the
/// builder, never a `400` to the agent.
#[tokio::test]
async fn an_out_of_range_lifetime_is_clamped_not_the_agents_error() {
    let app = app().await;
    use tower_agent_auth::TokenResolver as _;
    let parsed = app.store.token_format().parse(&app.supervised.0).unwrap();
    let lookup =
        tower_agent_auth::TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    let principal = app.store.resolve(&lookup).await.unwrap();
    for (asked, kept) in [
        (Duration::ZERO, Duration::from_secs(1)),
        (Duration::from_secs(3 * 86_400), Duration::from_secs(86_400)),
    ] {
        let supervision = Supervision::new(
            app.store.clone(),
            CapabilitySet::parse(["payments:send"]).unwrap(),
        )
        .lifetime(asked)
        .clock(app.clock.clone());
        let action = CriticalAction::new("payments:send", &http::Method::POST, "/payments")
            .details(json!({ "lifetime": asked.as_secs() }));
        let Err(ApprovalRejection::Required(summary)) =
            supervision.check(&principal, &action).await
        else {
            panic!("{asked:?}: not a pending approval");
        };
        let approval = app.store.approval(summary.id()).await.unwrap().unwrap();
        assert_eq!(approval.expires_at - approval.created_at, kept, "{asked:?}");
    }
}

/// An approval refusal — `429` too many pending, `400` invalid, `403` required — and any
/// answer a handler marks `NotActed` release the use a use-limited token reserved: the
/// application refused before acting. An answer not marked, after acting, spends it.
#[tokio::test]
async fn refusals_before_acting_release_the_use_of_a_use_limited_token() {
    let app = app().await;
    let agent = app
        .store
        .create_agent(NewAgent::new("limited", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let issued = app
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(3))
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    // No pending approval allowed: every new ask is `429`.
    let supervision = Supervision::new(
        app.store.clone(),
        CapabilitySet::parse(["payments:send"]).unwrap(),
    )
    .max_pending(Some(0))
    .clock(app.clock.clone());
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(app.store.clone()))
        .service_fn(move |request: Request<String>| {
            let supervision = supervision.clone();
            async move {
                let principal = request.extensions().get::<Principal>().unwrap().clone();
                let response = match request.uri().path() {
                    "/pay" => {
                        let action = CriticalAction::new("payments:send", request.method(), "/pay");
                        match supervision.check(&principal, &action).await {
                            Ok(()) => http::Response::new(String::new()),
                            Err(rejection) => rejection.to_response(),
                        }
                    }
                    "/bad" => {
                        let action = CriticalAction::new("payments:send", request.method(), "/bad")
                            .message("Pay\u{00a0}ACME");
                        match supervision.check(&principal, &action).await {
                            Ok(()) => http::Response::new(String::new()),
                            Err(rejection) => rejection.to_response(),
                        }
                    }
                    "/refused" => {
                        let mut response = http::Response::new(String::new());
                        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                        response
                            .extensions_mut()
                            .insert(tower_agent_auth::layer::NotActed);
                        response
                    }
                    _ => {
                        let mut response = http::Response::new(String::new());
                        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                        response
                    }
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
    let call = |path: &'static str| {
        let (service, token) = (service.clone(), token.clone());
        async move {
            let request = Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .body(String::new())
                .unwrap();
            service.oneshot(request).await.unwrap().status()
        }
    };
    let left = || async {
        app.store
            .token(&agent.id, &issued.info.id)
            .await
            .unwrap()
            .unwrap()
            .operations_remaining
    };
    for _ in 0..5 {
        assert_eq!(call("/pay").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(call("/bad").await, StatusCode::BAD_REQUEST);
        assert_eq!(call("/refused").await, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(left().await, Some(3), "nothing was acted on");
    assert_eq!(call("/acted").await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(left().await, Some(2), "an answer after acting spends");
}

/// A task token a supervised orchestrator minted: its approval records the task and the
/// orchestrator (why it is supervised), the management API shows both, and every approval
/// event carries the task id, so the trail filtered by task finds them.
#[tokio::test]
async fn an_approval_of_a_task_token_records_its_task_and_orchestrator() {
    let app = app().await;
    let conductor = app
        .store
        .create_agent(
            NewAgent::new("conductor", "alice")
                .orchestrator()
                .with_type(AgentType::Supervised)
                .with_policy(Policy::unrestricted()),
        )
        .await
        .unwrap();
    let worker = app
        .store
        .create_agent(
            NewAgent::new("worker", "alice")
                .with_type(AgentType::Autonomous)
                .with_policy(Policy::unrestricted()),
        )
        .await
        .unwrap();
    let issued = app
        .store
        .issue_task_token(
            &conductor.id,
            &worker.id,
            &"alice".into(),
            NewToken::new("task").task_id("t-7"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let asked = pay_at(&app, "/payments", &token, FIFTY).await;
    assert_eq!(asked.status, StatusCode::FORBIDDEN, "{}", asked.body);
    let id = asked.approval_id();
    let stored = app.store.approval(&id).await.unwrap().unwrap();
    assert_eq!(stored.task_id.as_deref(), Some("t-7"));
    assert_eq!(stored.orchestrator.as_ref(), Some(&conductor.id));
    let shown = api(&app, "GET", &format!("/api/approvals/{id}"), "alice", None).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["task_id"], "t-7");
    assert_eq!(shown.body["orchestrator"], conductor.id.as_str());
    Managed::new(&app.store, "alice")
        .with_audit(&app.writer)
        .approve(&id, ApprovalBounds::default())
        .await
        .unwrap();
    assert_eq!(
        pay_at(&app, "/payments", &token, FIFTY).await.status,
        StatusCode::CREATED
    );
    app.writer.shutdown().await;
    let events: Vec<_> = app
        .store
        .events(&AuditFilter::agent(worker.id.clone()))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.as_str().starts_with("approval_"))
        .collect();
    assert_eq!(
        events.iter().map(|e| e.action).collect::<Vec<_>>(),
        [
            AuditAction::ApprovalRequested,
            AuditAction::ApprovalGranted,
            AuditAction::ApprovalUsed
        ]
    );
    for event in &events {
        assert_eq!(event.task_id.as_deref(), Some("t-7"), "{event:?}");
    }
}
