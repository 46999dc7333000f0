//! The connected apps, users and account pages over HTTP (`oneshot`): what each lists, what a
//! form changes, who is refused.

#![cfg(feature = "oauth")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::error::{BoxError, NotFound, StoreError};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{
    AccountAdmin, AccountSummary, FormToken, ManageState, Pages, PasswordVerifier, Sessions,
};
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, UserDirectory, UserRecord};
use tower_agent_auth::token::TokenFormat;

use crate::oauth_support::{OAuth, RESOURCE, form};

/// An answer, read whole.
struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Page {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A person's browser: their session's cookie value.
struct Person(String);

impl Person {
    fn cookie(&self) -> String {
        format!("agent_auth_session={}", self.0)
    }

    async fn get(&self, app: &Router, uri: &str) -> Page {
        let request = Request::get(uri)
            .header(header::COOKIE, self.cookie())
            .body(Body::empty())
            .unwrap();
        call(app, request).await
    }

    /// Posts `pairs` with this session's form token.
    async fn post(&self, app: &Router, uri: &str, pairs: &[(&str, &str)]) -> Page {
        let token = FormToken::for_secret(&self.0);
        let mut pairs = pairs.to_vec();
        pairs.push(("csrf", token.as_str()));
        let request = Request::post(uri)
            .header(header::COOKIE, self.cookie())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(&pairs)))
            .unwrap();
        call(app, request).await
    }
}

fn pages_over(store: MemoryStore, sessions: Sessions, accounts: Option<Arc<Accounts>>) -> Router {
    let mut pages = Pages::new(ManageState {
        store: store.clone(),
        audit: None,
    });
    if let Some(accounts) = accounts {
        pages = pages.accounts(accounts);
    }
    pages.router().layer(
        AgentAuthLayer::new(store)
            .optional()
            .with_session_resolver(sessions),
    )
}

/// The access and refresh tokens of a connection, the page lists the app; disconnecting it on
/// the page makes both fail.
#[tokio::test]
async fn a_connected_app_is_listed_and_disconnecting_it_ends_its_tokens() {
    let oauth = OAuth::new().await;
    let alice = Person(oauth.sessions.start(UserId::from("alice")).await.unwrap());
    let client = oauth.public_client().await;
    let (code, verifier) = oauth
        .authorize(&alice.cookie(), &client, "notes:read", None)
        .await;
    let tokens = oauth.exchange(&client, &code, &verifier).await.json();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(oauth.api("/api/notes", &access).await, StatusCode::OK);
    let app = pages_over(oauth.store.clone(), oauth.sessions.clone(), None);

    let list = alice.get(&app, "/apps").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("Test MCP client"), "{}", list.body);
    assert!(list.body.contains("notes:read"), "{}", list.body);
    assert!(list.body.contains(&client), "{}", list.body);
    // bob connected nothing, and sees nothing of alice's.
    let bob = Person(oauth.sessions.start(UserId::from("bob")).await.unwrap());
    let theirs = bob.get(&app, "/apps").await;
    assert!(!theirs.body.contains("Test MCP client"), "{}", theirs.body);
    assert!(theirs.body.contains("not connected any"), "{}", theirs.body);
    let forged = bob
        .post(&app, "/apps/disconnect", &[("client", &client)])
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(oauth.api("/api/notes", &access).await, StatusCode::OK);

    // Asked first, on a page of its own; then a post without the form's token is refused.
    let ask = alice
        .get(
            &app,
            &format!("/apps/disconnect?{}", form(&[("client", &client)])),
        )
        .await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.body);
    assert!(
        ask.body.contains("Disconnect Test MCP client"),
        "{}",
        ask.body
    );
    let tokenless = Request::post("/apps/disconnect")
        .header(header::COOKIE, alice.cookie())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("client", &client)])))
        .unwrap();
    assert_eq!(call(&app, tokenless).await.status, StatusCode::FORBIDDEN);
    assert_eq!(oauth.api("/api/notes", &access).await, StatusCode::OK);

    let done = alice
        .post(&app, "/apps/disconnect", &[("client", &client)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/apps?done=disconnected"));
    assert_eq!(
        oauth.api("/api/notes", &access).await,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = oauth
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", &refresh),
                ("resource", RESOURCE),
            ],
            None,
        )
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refreshed.body
    );
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    let after = alice.get(&app, "/apps?done=disconnected").await;
    assert!(after.body.contains("was disconnected"), "{}", after.body);
    assert!(!after.body.contains("Test MCP client"), "{}", after.body);
}

/// The application's accounts in memory: ids, roles, active, passwords in clear (a test), and
/// the directory the sessions read kept in step.
struct Accounts {
    directory: MemoryUserDirectory,
    rows: Mutex<BTreeMap<String, Row>>,
}

/// An account: its role, whether active, its password, its credential stamp.
type Row = (Option<CapabilitySet>, bool, String, u64);

impl Accounts {
    fn new(directory: MemoryUserDirectory) -> Self {
        Self {
            directory,
            rows: Mutex::default(),
        }
    }

    fn publish(&self, id: &str) {
        let rows = self.rows.lock().unwrap();
        let (role, active, _, stamp) = &rows[id];
        let policy = role
            .clone()
            .map_or_else(Policy::unrestricted, Policy::allow);
        self.directory.insert(
            UserRecord::new(id, policy)
                .with_active(*active)
                .with_credential_stamp(*stamp),
        );
    }

    fn change(&self, id: &str, change: impl FnOnce(&mut Row)) -> Result<(), StoreError> {
        {
            let mut rows = self.rows.lock().unwrap();
            let row = rows
                .get_mut(id)
                .ok_or_else(|| NotFound::User(id.to_owned()))?;
            change(row);
        }
        self.publish(id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl PasswordVerifier for Accounts {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .get(user)
            .filter(|(_, active, stored, _)| *active && stored == password)
            .map(|_| UserId::from(user)))
    }
}

#[async_trait::async_trait]
impl AccountAdmin for Accounts {
    async fn list(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .map(|(id, (role, active, _, _))| {
                let mut summary = AccountSummary::new(
                    id.as_str(),
                    role.clone(),
                    time::OffsetDateTime::UNIX_EPOCH,
                );
                summary.active = *active;
                summary
            })
            .collect())
    }

    async fn add(
        &self,
        id: &str,
        role: Option<&CapabilitySet>,
        password: &str,
    ) -> Result<(), StoreError> {
        if id.is_empty() || id.contains('<') {
            return Err(StoreError::invalid(format!("user id {id:?} is not valid")));
        }
        {
            let mut rows = self.rows.lock().unwrap();
            if rows.contains_key(id) {
                return Err(StoreError::invalid(format!("a user {id:?} already exists")));
            }
            rows.insert(id.to_owned(), (role.cloned(), true, password.to_owned(), 1));
        }
        self.publish(id);
        Ok(())
    }

    async fn set_role(&self, id: &str, role: Option<&CapabilitySet>) -> Result<(), StoreError> {
        self.change(id, |row| row.0 = role.cloned())
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), StoreError> {
        self.change(id, |row| row.1 = active)
    }

    async fn set_password(&self, id: &str, password: &str) -> Result<(), StoreError> {
        self.change(id, |row| {
            row.2 = password.to_owned();
            row.3 += 1;
        })
    }
}

/// An admin (`*`) and an operator (`agents:read`), signed in; the pages with the accounts.
async fn with_accounts() -> (Router, Arc<Accounts>, Person, Person) {
    let directory = MemoryUserDirectory::new();
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), directory.clone());
    let accounts = Arc::new(Accounts::new(directory.clone()));
    accounts.add("root", None, "root-password").await.unwrap();
    let operator = CapabilitySet::parse(["agents:read"]).unwrap();
    accounts
        .add("olga", Some(&operator), "olga-password")
        .await
        .unwrap();
    let users: Arc<dyn UserDirectory> = Arc::new(directory);
    let sessions = Sessions::new(users, Duration::from_secs(3600));
    // Tied to the credential stamps, as the sign-in route's sessions are.
    let root = Person(sessions.begin(UserId::from("root")).await.unwrap());
    let olga = Person(sessions.begin(UserId::from("olga")).await.unwrap());
    let app = pages_over(store, sessions, Some(accounts.clone()));
    (app, accounts, root, olga)
}

/// A site admin adds a user, changes their role and deactivates them (after a page that
/// asks); what they typed is shown back as text.
#[tokio::test]
async fn an_admin_adds_a_user_changes_the_role_and_deactivates() {
    let (app, accounts, root, _) = with_accounts().await;
    let list = root.get(&app, "/users").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("olga") && list.body.contains("agents:read"));
    assert!(list.body.contains(r#"href="/users""#), "the nav link");

    let added = root
        .post(
            &app,
            "/users",
            &[
                ("id", "nina"),
                ("role", "agents:read, approvals:*"),
                ("password", "nina-pass"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location.as_deref(), Some("/users?done=added"));
    assert!(
        accounts
            .verify("nina", "nina-pass")
            .await
            .unwrap()
            .is_some()
    );
    let shown = root.get(&app, "/users?done=added").await;
    assert!(shown.body.contains("The user was added."), "{}", shown.body);
    assert!(
        shown.body.contains(r#"value="approvals:* agents:read""#),
        "{}",
        shown.body
    );

    // Refusals say why, and change nothing.
    for (pairs, why) in [
        (
            [("id", "nina"), ("role", "*"), ("password", "long-enough")],
            "already exists",
        ),
        (
            [
                ("id", "ida"),
                ("role", "not a capability!"),
                ("password", "long-enough"),
            ],
            "not valid",
        ),
        (
            [("id", "ida"), ("role", "*"), ("password", "short")],
            "8 characters",
        ),
        (
            [
                ("id", "<script>x</script>"),
                ("role", "*"),
                ("password", "long-enough"),
            ],
            "not valid",
        ),
    ] {
        let refused = root.post(&app, "/users", &pairs).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{pairs:?}"
        );
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
        assert!(!refused.body.contains("<script>x"), "{}", refused.body);
    }

    let changed = root
        .post(&app, "/users/role", &[("id", "nina"), ("role", "*")])
        .await;
    assert_eq!(changed.location.as_deref(), Some("/users?done=role"));
    let nina = accounts.list().await.unwrap();
    let nina = nina.iter().find(|a| a.id.as_str() == "nina").unwrap();
    assert_eq!(nina.role, None, "unrestricted");
    let unknown = root
        .post(&app, "/users/role", &[("id", "nobody"), ("role", "*")])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let ask = root.get(&app, "/users/active?id=nina&active=false").await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Deactivate nina?"), "{}", ask.body);
    let deactivated = root
        .post(
            &app,
            "/users/active",
            &[("id", "nina"), ("active", "false")],
        )
        .await;
    assert_eq!(
        deactivated.location.as_deref(),
        Some("/users?done=deactivated")
    );
    assert!(
        accounts
            .verify("nina", "nina-pass")
            .await
            .unwrap()
            .is_none()
    );
    let myself = root
        .post(
            &app,
            "/users/active",
            &[("id", "root"), ("active", "false")],
        )
        .await;
    assert_eq!(
        myself.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not oneself"
    );
    let activated = root
        .post(&app, "/users/active", &[("id", "nina"), ("active", "true")])
        .await;
    assert_eq!(activated.location.as_deref(), Some("/users?done=activated"));
    assert!(
        accounts
            .verify("nina", "nina-pass")
            .await
            .unwrap()
            .is_some()
    );
}

/// Anyone but a site admin is refused the users page and each of its posts, and sees no link
/// to it.
#[tokio::test]
async fn a_user_who_is_not_an_admin_is_refused_the_users_page() {
    let (app, accounts, _, olga) = with_accounts().await;
    let home = olga.get(&app, "/account").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains(r#"href="/users""#), "{}", home.body);
    let page = olga.get(&app, "/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.body.contains("root"), "{}", page.body);
    let ask = olga.get(&app, "/users/active?id=root&active=false").await;
    assert_eq!(ask.status, StatusCode::FORBIDDEN);
    for (uri, pairs) in [
        (
            "/users",
            vec![("id", "eve"), ("role", "*"), ("password", "eve-password")],
        ),
        ("/users/role", vec![("id", "olga"), ("role", "*")]),
        ("/users/active", vec![("id", "root"), ("active", "false")]),
    ] {
        let refused = olga.post(&app, uri, &pairs).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{uri}");
    }
    let after = accounts.list().await.unwrap();
    assert_eq!(after.len(), 2, "no one added");
    assert!(after.iter().all(|a| a.active), "no one deactivated");
    let olga_now = after.iter().find(|a| a.id.as_str() == "olga").unwrap();
    assert!(olga_now.role.is_some(), "her role unchanged");
}

/// A person changes their password on the account page: the current one must be right and the
/// new one given twice; then every session of theirs, this one too, has ended.
#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_the_sessions() {
    let (app, accounts, root, olga) = with_accounts().await;
    let page = olga.get(&app, "/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("olga") && page.body.contains("agents:read"));
    for (pairs, why) in [
        (
            [
                ("current", "wrong"),
                ("new", "new-password"),
                ("again", "new-password"),
            ],
            "not right",
        ),
        (
            [
                ("current", "olga-password"),
                ("new", "new-password"),
                ("again", "other-one"),
            ],
            "differ",
        ),
        (
            [
                ("current", "olga-password"),
                ("new", "short"),
                ("again", "short"),
            ],
            "8 characters",
        ),
    ] {
        let refused = olga.post(&app, "/account/password", &pairs).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    assert!(
        accounts
            .verify("olga", "olga-password")
            .await
            .unwrap()
            .is_some()
    );

    let changed = olga
        .post(
            &app,
            "/account/password",
            &[
                ("current", "olga-password"),
                ("new", "new-password"),
                ("again", "new-password"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.body.contains("Sign in again"), "{}", changed.body);
    assert!(
        accounts
            .verify("olga", "new-password")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        accounts
            .verify("olga", "olga-password")
            .await
            .unwrap()
            .is_none()
    );
    let ended = olga.get(&app, "/account").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "the session ended");
    assert!(ended.location.unwrap().starts_with("/login"));
    assert_eq!(
        root.get(&app, "/account").await.status,
        StatusCode::OK,
        "others' stay"
    );
}

/// A stolen session cannot guess the password on the account page: wrong current passwords are
/// limited as sign-ins are (5 a minute per account and address), and then even the right one
/// waits.
#[tokio::test]
async fn wrong_current_passwords_are_throttled() {
    let (app, accounts, _root, olga) = with_accounts().await;
    let guess = |current: &'static str| {
        [
            ("current", current),
            ("new", "new-password"),
            ("again", "new-password"),
        ]
    };
    for _ in 0..5 {
        let refused = olga.post(&app, "/account/password", &guess("wrong")).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let throttled = olga
        .post(&app, "/account/password", &guess("olga-password"))
        .await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert!(throttled.body.contains("Too many wrong passwords"));
    assert!(
        accounts
            .verify("olga", "olga-password")
            .await
            .unwrap()
            .is_some(),
        "unchanged"
    );
}
