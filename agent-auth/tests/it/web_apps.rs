//! Journey 4 in a real browser: after an OAuth consent the application is listed on the
//! connected apps page, and disconnecting it there makes its access token and its refresh
//! token fail. Then the users page (a site admin adds, changes and deactivates a user) and the
//! account page, and the device entry page; a screenshot of each page and state, and hostile
//! text in every field shown back (the client's name, a user id, a role) rendered as text.

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    Http, PATIENCE, assert_no_injection, authorization, callback_listener, callback_query,
    chromedriver, in_chromium, param, screenshot, sign_in, urlencoded, wait_for_url,
};

/// Script-injection attempts, put in every field the pages show back.
const HOSTILE: &str = r#"<script>window.pwned=1</script>"><img src=x onerror=window.pwned=1>"#;

/// `agent-auth user add ID --password-stdin` on `db`, the role `capabilities` (unrestricted
/// if `None`).
fn add_user(db: &str, id: &str, capabilities: Option<&str>, password: &str) {
    let mut args = vec!["user", "add", id, "--password-stdin"];
    if let Some(capabilities) = capabilities {
        args.extend(["--capabilities", capabilities]);
    }
    crate::cluster::cli(db, &args, &format!("{password}\n"));
}

/// The text of the page's `main`.
async fn main_text(browser: &Client) -> String {
    // Waited for: right after a click the next page may not be there yet.
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks the element `css` and waits for the browser to be at a URL starting with `then`.
async fn click(browser: &Client, css: &str, then: &str) {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    wait_for_url(browser, then).await;
}

/// Types `text` in the field `css` (emptied first).
async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

#[test]
fn connected_apps_users_and_account_in_chromium() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("apps.db").display());
    let for_scenario = db.clone();
    in_chromium(&driver, &db, move |browser, base, password| {
        journey(browser, base, password, for_scenario)
    });
}

async fn journey(browser: Client, base: String, password: String, db: String) {
    let http = Http::new();
    let (port, callbacks) = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let resource = format!("{base}/demo");
    let client_name = format!("Journey app {HOSTILE}");

    // A client registers itself; the demo user signs in and allows it.
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/register"),
            &[("content-type", "application/json")],
            json!({
                "client_name": client_name,
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "application_type": "native",
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, http::StatusCode::CREATED, "{body}");
    let registered: Value = serde_json::from_str(&body).unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    sign_in(&browser, &base, "demo", &password).await;

    // Before: no app connected.
    browser.goto(&format!("{base}/apps")).await.unwrap();
    assert!(main_text(&browser).await.contains("not connected any"));
    screenshot(&browser, "apps-none").await;

    let request = authorization(&base, &client_id, &redirect_uri);
    browser.goto(&request.url).await.unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap();
    assert!(
        main_text(&browser).await.contains(&client_name),
        "shown as text"
    );
    assert_no_injection(&browser, "consent").await;
    screenshot(&browser, "consent").await;
    browser
        .find(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = wait_for_url(&browser, &redirect_uri).await;
    let answer = callback_query(&callbacks, &shown);
    let code = param(&answer, "code").expect("a code").to_owned();
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/token"),
            &[("content-type", "application/x-www-form-urlencoded")],
            urlencoded(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("client_id", &client_id),
                ("code_verifier", &request.verifier),
                ("resource", &resource),
            ]),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let posts = format!("{resource}/posts");
    let auth = [("authorization", bearer.as_str())];
    let read = || http.send(http::Method::GET, &posts, &auth, String::new());
    assert_eq!(
        read().await.0,
        http::StatusCode::OK,
        "the access token works"
    );

    // The app is listed, with what it may do; disconnecting it asks first.
    browser.goto(&format!("{base}/apps")).await.unwrap();
    let listed = main_text(&browser).await;
    assert!(listed.contains(&client_name), "{listed}");
    assert!(listed.contains("posts:read"), "{listed}");
    assert_no_injection(&browser, "apps").await;
    screenshot(&browser, "apps").await;
    click(
        &browser,
        "form[action=\"/apps/disconnect\"] button",
        &format!("{base}/apps/disconnect"),
    )
    .await;
    assert_no_injection(&browser, "disconnect").await;
    screenshot(&browser, "apps-disconnect").await;
    click(
        &browser,
        "form[method=post][action=\"/apps/disconnect\"] button.danger",
        &format!("{base}/apps?done=disconnected"),
    )
    .await;
    let after = main_text(&browser).await;
    assert!(after.contains("was disconnected"), "{after}");
    assert!(!after.contains(&client_name), "{after}");
    screenshot(&browser, "apps-disconnected").await;

    // Its access token fails within the server's cache bound (`--cache-bound`, 1 s), and its
    // refresh token at once.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, body) = read().await;
        if status == http::StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "access after: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/token"),
            &[("content-type", "application/x-www-form-urlencoded")],
            urlencoded(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
                ("resource", &resource),
            ]),
        )
        .await;
    assert_eq!(
        status,
        http::StatusCode::BAD_REQUEST,
        "refresh after: {body}"
    );
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "invalid_grant", "{body}");

    // The demo user is no site admin: no link to the users page, and 403 there.
    assert!(
        browser
            .find(Locator::Css("nav a[href=\"/users\"]"))
            .await
            .is_err()
    );
    browser.goto(&format!("{base}/users")).await.unwrap();
    assert!(
        main_text(&browser)
            .await
            .contains("Only a site administrator")
    );

    // My account, and a wrong current password.
    browser.goto(&format!("{base}/account")).await.unwrap();
    let account = main_text(&browser).await;
    assert!(
        account.contains("demo") && account.contains("posts:*"),
        "{account}"
    );
    screenshot(&browser, "account").await;
    fill(&browser, "#current", "not my password").await;
    fill(&browser, "#new", "a new password").await;
    fill(&browser, "#again", "a new password").await;
    click(
        &browser,
        "form[action=\"/account/password\"] button",
        &format!("{base}/account/password"),
    )
    .await;
    assert!(
        main_text(&browser)
            .await
            .contains("current password is not right")
    );
    screenshot(&browser, "account-wrong-password").await;

    // The device entry page, and a wrong code.
    browser.goto(&format!("{base}/oauth/device")).await.unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap();
    screenshot(&browser, "device-entry").await;
    fill(&browser, "input[name=user_code]", "BCDF-GHJK").await;
    click(
        &browser,
        "form[action=\"/oauth/device\"] button",
        &format!("{base}/oauth/device"),
    )
    .await;
    assert!(main_text(&browser).await.contains("not right"));
    screenshot(&browser, "device-entry-wrong").await;

    // A site admin: the users page.
    let root_password = "root password 1";
    add_user(&db, "root", None, root_password);
    browser.delete_all_cookies().await.unwrap();
    sign_in(&browser, &base, "root", root_password).await;
    browser.goto(&format!("{base}/users")).await.unwrap();
    let users = main_text(&browser).await;
    assert!(users.contains("demo") && users.contains("root"), "{users}");
    screenshot(&browser, "users").await;

    // A hostile id is refused, shown as text.
    fill(&browser, "#new-id", HOSTILE).await;
    fill(&browser, "#new-role", "*").await;
    fill(&browser, "#new-password", "a long password").await;
    click(
        &browser,
        "form[action=\"/users\"] button",
        &format!("{base}/users"),
    )
    .await;
    assert!(
        main_text(&browser).await.contains("window.pwned"),
        "shown as text"
    );
    assert_no_injection(&browser, "users: hostile id").await;
    screenshot(&browser, "users-refused").await;

    // Add nina, change her role (a hostile role is refused as text), deactivate her.
    browser.goto(&format!("{base}/users")).await.unwrap();
    fill(&browser, "#new-id", "nina").await;
    fill(&browser, "#new-role", "posts:read").await;
    fill(&browser, "#new-password", "nina's password").await;
    click(
        &browser,
        "form[action=\"/users\"] button",
        &format!("{base}/users?done=added"),
    )
    .await;
    assert!(main_text(&browser).await.contains("nina"));
    let role = "input[name=role][aria-label=\"Role of nina\"]";
    fill(&browser, role, HOSTILE).await;
    browser
        .find(Locator::XPath(
            "//tr[.//input[@value='nina']]//form[@action='/users/role']//button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/users/role")).await;
    assert_no_injection(&browser, "users: hostile role").await;
    browser.goto(&format!("{base}/users")).await.unwrap();
    fill(&browser, role, "posts:* payments:send").await;
    browser
        .find(Locator::XPath(
            "//tr[.//input[@value='nina']]//form[@action='/users/role']//button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/users?done=role")).await;
    browser
        .find(Locator::XPath(
            "//tr[.//input[@value='nina']]//form[@action='/users/active']//button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/users/active")).await;
    screenshot(&browser, "users-deactivate").await;
    click(
        &browser,
        "form[method=post][action=\"/users/active\"] button.danger",
        &format!("{base}/users?done=deactivated"),
    )
    .await;
    let users = main_text(&browser).await;
    assert!(users.contains("deactivated"), "{users}");
    assert_no_injection(&browser, "users").await;
    screenshot(&browser, "users-changed").await;
}
