//! The agent pages over HTTP (no browser): each route's success and refusal by role, a token
//! shown once and never again, an operator's forged revoke refused while the token keeps
//! working, and what people typed shown as text.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::audit::{AuditWriter, WriterOptions};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::principal::{Principal, UserId};
use tower_agent_auth::server::{FormToken, ManageState, Pages, Sessions};
use tower_agent_auth::store::{
    AccessRole, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;

/// The owner of `writer`, its admin, operator and viewer, and someone with no role on it.
const OWNER: &str = "alice";
const ADMIN: &str = "adam";
const OPERATOR: &str = "olga";
const VIEWER: &str = "vic";
const STRANGER: &str = "mallory";

struct App {
    router: Router,
    store: MemoryStore,
    sessions: Sessions,
}

/// The pages and a `/whoami` route for agent tokens, one layer around both (as `serve`
/// mounts them); the agent `writer` of alice with the three grants and one token, `ci`.
async fn app() -> (App, String) {
    let users = MemoryUserDirectory::new();
    for user in [OWNER, ADMIN, OPERATOR, VIEWER, STRANGER, "<b>bob</b>"] {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let agent = store
        .create_agent(NewAgent::new("writer", OWNER))
        .await
        .unwrap();
    for (user, role) in [
        (ADMIN, AccessRole::Admin),
        (OPERATOR, AccessRole::Operator),
        (VIEWER, AccessRole::Viewer),
    ] {
        store
            .grant(&agent.id, &UserId::from(user), role)
            .await
            .unwrap();
    }
    let token = store
        .create_token(&agent.id, NewToken::new("ci"))
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let directory: Arc<dyn UserDirectory> = Arc::new(users);
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let whoami = Router::new().route(
        "/whoami",
        get(|principal: Principal| async move { principal.user_id().as_str().to_owned() }),
    );
    let router = Pages::new(ManageState {
        store: store.clone(),
        audit: Some(writer.clone()),
    })
    .router()
    .merge(whoami)
    .layer(
        AgentAuthLayer::new(store.clone())
            .optional()
            .audit(writer)
            .with_session_resolver(sessions.clone()),
    );
    (
        App {
            router,
            store,
            sessions,
        },
        token,
    )
}

/// An answer: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl App {
    /// A session of `user`: its cookie's value.
    async fn session(&self, user: &str) -> String {
        self.sessions.start(UserId::from(user)).await.unwrap()
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, session: &str, path: &str) -> Answer {
        let request = Request::get(path)
            .header(header::COOKIE, format!("agent_auth_session={session}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// Posts `fields` as a form, with the session's own form token.
    async fn post(&self, session: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
        let token = FormToken::for_secret(session);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", token.as_str())
            .extend_pairs(fields)
            .finish();
        let request = Request::post(path)
            .header(header::COOKIE, format!("agent_auth_session={session}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// The status `/whoami` answers `token` with.
    async fn use_token(&self, token: &str) -> StatusCode {
        let request = Request::get("/whoami")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await.status
    }

    async fn token_ids(&self) -> Vec<String> {
        let agent = self.store.agent_by_slug("writer").await.unwrap().unwrap();
        let mut tokens = self.store.list_tokens(&agent.id).await.unwrap();
        tokens.sort_by_key(|t| t.created_at);
        tokens.iter().map(|t| t.id.as_str().to_owned()).collect()
    }
}

/// The value of the hidden field `name` in `page` (the first).
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The token shown in a "token created" page.
fn shown_token(page: &str) -> String {
    let start = page.find("data-once>").expect("a token shown") + "data-once>".len();
    page[start..].split('<').next().unwrap().to_owned()
}

fn location(answer: &Answer) -> &str {
    answer.headers[header::LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn each_role_sees_what_it_may_do_and_nothing_more() {
    let (app, _) = app().await;
    let buttons = [
        "action=\"/agents/writer/tokens\"",
        "action=\"/agents/writer/tokens/revoke\"",
        "action=\"/agents/writer/tokens/rotate\"",
        "href=\"/agents/writer/policy\"",
        "href=\"/agents/writer/delete\"",
        "href=\"/agents/writer/disable\"",
        "action=\"/agents/writer/grants\"",
        "action=\"/agents/writer/grants/remove\"",
    ];
    for user in [OWNER, ADMIN] {
        let page = app.get(&app.session(user).await, "/agents/writer").await;
        assert_eq!(page.status, StatusCode::OK, "{user}");
        for button in buttons {
            assert!(page.body.contains(button), "{user}: {button}");
        }
        assert!(page.body.contains("<svg class=\"chart\""), "{user}");
        assert!(page.body.contains(">ci"), "{user}: the token's label");
        assert!(page.body.contains(OPERATOR), "{user}: the grants");
    }
    // An operator sees the tokens, the grants and the activity, and changes nothing.
    let page = app
        .get(&app.session(OPERATOR).await, "/agents/writer")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(">ci"), "the token's label");
    assert!(page.body.contains("<svg class=\"chart\""));
    assert!(page.body.contains(VIEWER), "the grants");
    for button in buttons {
        assert!(!page.body.contains(button), "operator: {button}");
    }
    assert!(!page.body.contains("Revoke"), "{}", page.body);
    // A viewer sees the agent and its policy, not its tokens, grants or activity.
    let page = app.get(&app.session(VIEWER).await, "/agents/writer").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Policy"));
    assert!(!page.body.contains(">ci"), "the token's label");
    assert!(!page.body.contains(OPERATOR), "the grants");
    assert!(!page.body.contains("<svg"));
    for button in buttons {
        assert!(!page.body.contains(button), "viewer: {button}");
    }
    // Someone with no role: 403; no such agent: 404; nobody signed in: to the sign-in form.
    let page = app
        .get(&app.session(STRANGER).await, "/agents/writer")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.body.contains(">ci"));
    let page = app.get(&app.session(OWNER).await, "/agents/nobody").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = app.get(&app.session(OWNER).await, "/agents/%3Cb%3E").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("<b>"), "{}", page.body);
    let anonymous = app
        .send(Request::get("/agents/writer").body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(location(&anonymous).starts_with("/login?return="));
}

#[tokio::test]
async fn an_operators_forged_revoke_is_refused_and_the_token_still_works() {
    let (app, token) = app().await;
    let id = app.token_ids().await.remove(0);
    let operator = app.session(OPERATOR).await;
    // The operator's own page carries their form token: the forged post has a valid one.
    let page = app.get(&operator, "/agents/writer").await;
    let csrf = hidden(&page.body, "csrf");
    assert_eq!(csrf, FormToken::for_secret(&operator).as_str());
    for (path, fields) in [
        ("/agents/writer/tokens/revoke", vec![("token", id.as_str())]),
        (
            "/agents/writer/tokens/rotate",
            vec![("token", id.as_str()), ("newest", id.as_str())],
        ),
        (
            "/agents/writer/tokens",
            vec![("label", "mine"), ("newest", id.as_str())],
        ),
    ] {
        let answer = app.post(&operator, path, &fields).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        assert!(answer.body.contains("Not allowed"), "{path}");
    }
    assert_eq!(app.use_token(&token).await, StatusCode::OK);
    assert_eq!(app.token_ids().await, [id], "nothing created");
    // Without a form token, or with another session's, nothing is even tried.
    let owner = app.session(OWNER).await;
    let request = Request::post("/agents/writer/tokens/revoke")
        .header(header::COOKIE, format!("agent_auth_session={owner}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "token={}&csrf={csrf}",
            app.token_ids().await[0]
        )))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.use_token(&token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_token_is_shown_once_and_a_reload_makes_no_second_one() {
    let (app, _) = app().await;
    let owner = app.session(OWNER).await;
    let page = app.get(&owner, "/agents/writer").await;
    let newest = hidden(&page.body, "newest");
    let form = [
        ("label", "<script>window.pwned=1</script>"),
        ("lifetime", "86400"),
        ("capabilities", "posts:read"),
        ("max_uses", "5"),
        ("newest", newest.as_str()),
    ];
    let created = app.post(&owner, "/agents/writer/tokens", &form).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers[header::CACHE_CONTROL], "no-store");
    assert!(created.body.contains("will not be shown again"));
    assert!(created.body.contains("data-copy=\"new-token\""));
    assert!(
        !created.body.contains("<script>window"),
        "the label escaped"
    );
    assert!(created.body.contains("&#60;script&#62;window.pwned=1&#60;"));
    let token = shown_token(&created.body);
    assert!(token.starts_with("acme_writer_"), "{token}");
    assert_eq!(app.use_token(&token).await, StatusCode::OK);

    // The reload posts the same form again: nothing is made, nothing shown.
    let again = app.post(&owner, "/agents/writer/tokens", &form).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(!again.body.contains(&token));
    assert!(!again.body.contains("data-once"));
    assert_eq!(app.token_ids().await.len(), 2);

    // The agent page lists it, escaped, with its limits, and never shows the secret.
    let page = app.get(&owner, "/agents/writer").await;
    assert!(!page.body.contains(&token));
    assert!(!page.body.contains("<script>window"));
    assert!(page.body.contains("&#60;script&#62;window.pwned=1&#60;"));
    assert!(page.body.contains("4 of 5"), "uses left: one spent");
    assert!(page.body.contains("only posts:read"));

    // Bad fields are refused with what is wrong, and make nothing.
    let newest = hidden(&page.body, "newest");
    for (field, value) in [
        ("label", ""),
        ("max_uses", "0"),
        ("capabilities", "Not A Cap"),
    ] {
        let mut fields = vec![("label", "x"), ("newest", newest.as_str())];
        fields.retain(|(name, _)| *name != field);
        fields.push((field, value));
        let answer = app.post(&owner, "/agents/writer/tokens", &fields).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
    }
    assert_eq!(app.token_ids().await.len(), 2);
}

#[tokio::test]
async fn revoke_and_rotate_with_a_grace_period() {
    let (app, token) = app().await;
    let admin = app.session(ADMIN).await;
    let id = app.token_ids().await.remove(0);
    let rotated = app
        .post(
            &admin,
            "/agents/writer/tokens/rotate",
            &[("token", &id), ("grace", "3600"), ("newest", &id)],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    assert_eq!(rotated.headers[header::CACHE_CONTROL], "no-store");
    assert!(rotated.body.contains("Token rotated"));
    let new = shown_token(&rotated.body);
    assert_eq!(app.use_token(&new).await, StatusCode::OK);
    assert_eq!(
        app.use_token(&token).await,
        StatusCode::OK,
        "within the grace"
    );

    let revoked = app
        .post(&admin, "/agents/writer/tokens/revoke", &[("token", &id)])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&revoked), "/agents/writer?done=revoked");
    assert_eq!(app.use_token(&token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.use_token(&new).await, StatusCode::OK);
    let page = app.get(&admin, location(&revoked)).await;
    assert!(page.body.contains("Token revoked"), "the notice");
    assert!(page.body.contains("status revoked"));

    let unknown = app
        .post(
            &admin,
            "/agents/writer/tokens/revoke",
            &[("token", "tok_nope")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_chart_counts_requests_admitted_and_refused() {
    let (app, token) = app().await;
    let owner = app.session(OWNER).await;
    assert_eq!(app.use_token(&token).await, StatusCode::OK);
    assert_eq!(app.use_token(&token).await, StatusCode::OK);
    let id = app.token_ids().await.remove(0);
    app.post(&owner, "/agents/writer/tokens/revoke", &[("token", &id)])
        .await;
    assert_eq!(app.use_token(&token).await, StatusCode::UNAUTHORIZED);
    // The audit writer writes in the background.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = app.get(&owner, "/agents/writer").await;
        if page
            .body
            .contains("Requests in the last 24 hours: 2 admitted, 1 refused.")
        {
            assert!(page.body.contains("<title id=\"activity-title\">"));
            assert!(page.body.contains("<rect class=\"admitted\""));
            assert!(page.body.contains("<rect class=\"refused\""));
            break;
        }
        assert!(std::time::Instant::now() < until, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_policy_is_edited_by_owner_and_admin_only() {
    let (app, _) = app().await;
    let owner = app.session(OWNER).await;
    let form = app.get(&owner, "/agents/writer/policy").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"everything\" checked"));
    let saved = app
        .post(
            &owner,
            "/agents/writer/policy",
            &[
                ("scope", "listed"),
                ("allow", "posts:*\r\ncomments:read"),
                ("deny", "posts:delete"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), "/agents/writer?done=policy");
    let agent = app.store.agent_by_slug("writer").await.unwrap().unwrap();
    assert_eq!(
        agent.policy.allowed().unwrap().to_strings(),
        ["posts:*", "comments:read"]
    );
    assert_eq!(agent.policy.denied().to_strings(), ["posts:delete"]);
    let page = app.get(&owner, "/agents/writer").await;
    assert!(
        page.body
            .contains("<code class=\"cap\">posts:delete</code>")
    );

    let bad = app
        .post(
            &owner,
            "/agents/writer/policy",
            &[("scope", "listed"), ("allow", "<b>x</b>")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.body.contains("<b>x"), "{}", bad.body);

    for user in [OPERATOR, VIEWER] {
        let session = app.session(user).await;
        let form = app.get(&session, "/agents/writer/policy").await;
        assert_eq!(form.status, StatusCode::FORBIDDEN, "{user}");
        let posted = app
            .post(
                &session,
                "/agents/writer/policy",
                &[("scope", "everything")],
            )
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN, "{user}");
    }
    let agent = app.store.agent_by_slug("writer").await.unwrap().unwrap();
    assert!(agent.policy.allowed().is_some(), "unchanged");
}

#[tokio::test]
async fn grants_are_added_and_withdrawn_by_owner_and_admin_only() {
    let (app, _) = app().await;
    let admin = app.session(ADMIN).await;
    let added = app
        .post(
            &admin,
            "/agents/writer/grants",
            &[("user", "<b>bob</b>"), ("role", "viewer")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(location(&added), "/agents/writer?done=granted");
    let page = app.get(&admin, "/agents/writer").await;
    assert!(page.body.contains("&#60;b&#62;bob&#60;"), "{}", page.body);
    assert!(!page.body.contains("<b>bob"));
    let removed = app
        .post(
            &admin,
            "/agents/writer/grants/remove",
            &[("user", "<b>bob</b>")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&removed), "/agents/writer?done=withdrawn");
    let page = app.get(&admin, "/agents/writer").await;
    assert!(!page.body.contains("bob"));

    let unknown = app
        .post(
            &admin,
            "/agents/writer/grants",
            &[("user", "nobody"), ("role", "viewer")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_role = app
        .post(
            &admin,
            "/agents/writer/grants",
            &[("user", VIEWER), ("role", "owner")],
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);

    let operator = app.session(OPERATOR).await;
    let forged = app
        .post(
            &operator,
            "/agents/writer/grants",
            &[("user", OPERATOR), ("role", "admin")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = app
        .post(
            &operator,
            "/agents/writer/grants/remove",
            &[("user", VIEWER)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let agent = app.store.agent_by_slug("writer").await.unwrap().unwrap();
    let roles: Vec<_> = app
        .store
        .grants(&agent.id)
        .await
        .unwrap()
        .iter()
        .map(|g| (g.user_id.as_str().to_owned(), g.role))
        .collect();
    assert!(roles.contains(&(OPERATOR.to_owned(), AccessRole::Operator)));
    assert!(roles.contains(&(VIEWER.to_owned(), AccessRole::Viewer)));
}

#[tokio::test]
async fn disable_and_delete_ask_first_and_are_for_owner_and_admin_only() {
    let (app, token) = app().await;
    let owner = app.session(OWNER).await;
    for action in ["disable", "delete"] {
        let path = format!("/agents/writer/{action}");
        let confirm = app.get(&owner, &path).await;
        assert_eq!(confirm.status, StatusCode::OK, "{action}");
        assert!(
            confirm.body.contains(&format!("action=\"{path}\"")),
            "{action}"
        );
        assert!(confirm.body.contains("Cancel"), "{action}");
        for user in [OPERATOR, VIEWER] {
            let session = app.session(user).await;
            assert_eq!(app.get(&session, &path).await.status, StatusCode::FORBIDDEN);
            assert_eq!(
                app.post(&session, &path, &[]).await.status,
                StatusCode::FORBIDDEN,
                "{user} {action}"
            );
        }
    }
    assert_eq!(app.use_token(&token).await, StatusCode::OK);
    let disabled = app.post(&owner, "/agents/writer/disable", &[]).await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&disabled), "/agents/writer?done=disabled");
    assert_eq!(app.use_token(&token).await, StatusCode::UNAUTHORIZED);
    let page = app.get(&owner, "/agents/writer").await;
    assert!(page.body.contains("action=\"/agents/writer/enable\""));
    let enabled = app.post(&owner, "/agents/writer/enable", &[]).await;
    assert_eq!(location(&enabled), "/agents/writer?done=enabled");
    assert_eq!(app.use_token(&token).await, StatusCode::OK);

    let operator = app.session(OPERATOR).await;
    assert_eq!(
        app.post(&operator, "/agents/writer/enable", &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let deleted = app.post(&owner, "/agents/writer/delete", &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/?done=deleted");
    assert!(app.store.agent_by_slug("writer").await.unwrap().is_none());
    assert_eq!(app.use_token(&token).await, StatusCode::UNAUTHORIZED);
    let home = app.get(&owner, "/?done=deleted").await;
    assert!(home.body.contains("Agent deleted"));
}

#[tokio::test]
async fn an_agent_is_created_from_the_home_page() {
    let (app, _) = app().await;
    let session = app.session(VIEWER).await;
    let home = app.get(&session, "/").await;
    assert!(home.body.contains("action=\"/agents\""));
    let created = app
        .post(
            &session,
            "/agents",
            &[("slug", "deploy-bot"), ("type", "supervised")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(location(&created), "/agents/deploy-bot?done=created");
    let agent = app
        .store
        .agent_by_slug("deploy-bot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.owner.as_str(), VIEWER);
    assert_eq!(agent.agent_type.as_str(), "supervised");
    let page = app.get(&session, location(&created)).await;
    assert!(page.body.contains("Agent created."));
    assert!(
        page.body.contains("action=\"/agents/deploy-bot/tokens\""),
        "its owner's"
    );

    for (slug, kind, status) in [
        ("deploy-bot", "autonomous", StatusCode::CONFLICT),
        (
            "<script>x</script>",
            "autonomous",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("fine", "boss", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let answer = app
            .post(&session, "/agents", &[("slug", slug), ("type", kind)])
            .await;
        assert_eq!(answer.status, status, "{slug}: {}", answer.body);
        assert!(!answer.body.contains("<script>x"), "{}", answer.body);
    }
}
