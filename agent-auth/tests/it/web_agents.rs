//! The agent pages in a real browser (the harness of [`browser`](super::browser)), one test a
//! journey of issue 22's acceptance:
//!
//! 1. sign in, create an agent, create a token: the page shows it once; it gets 200 from
//!    `/demo/me`; revoked on the page, it gets 401; reloading the pages and going back never
//!    shows it again;
//! 2. (journey 3) an operator, granted on the demo agent by its owner through the page, sees
//!    its tokens but no revoke button, and a revoke forged with the operator's own cookie and
//!    form token is refused with 403, the token still working.
//!
//! Each puts script-injection payloads in the fields the pages show back and checks that no
//! script reached the page; each takes screenshots of the pages it visits.
//!
//! Needs ChromeDriver and Chromium as [`browser`](super::browser) does; skips with a notice
//! without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use fantoccini::{Client, Locator};

use crate::browser::{
    Http, PATIENCE, assert_no_injection, chromedriver, in_chromium, screenshot, sign_in, urlencoded,
};

/// What each field the pages show back is given, at least once.
const SCRIPT: &str = "<script>window.pwned=1</script>";
const IMAGE: &str = "\"><img src=x onerror=window.pwned=1>";

/// The second user's password.
const OPERATOR_PASSWORD: &str = "operator-password-1";

/// Waits for an element of `css`.
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Types `text` into the field `css` of the page, emptied first.
async fn fill(browser: &Client, css: &str, text: &str) {
    let field = wait_for(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    wait_for(browser, css).await.click().await.unwrap();
}

/// The page's whole text.
async fn text(browser: &Client) -> String {
    wait_for(browser, "body").await.text().await.unwrap()
}

/// Creates a token on the agent page the browser shows, labelled `label`, and returns it as
/// the page that follows shows it (after a screenshot of that page as `shot`).
async fn create_token(browser: &Client, label: &str, shot: &str) -> String {
    fill(browser, "form.create-token input[name=label]", label).await;
    wait_for(
        browser,
        "form.create-token select[name=lifetime] option[value=\"3600\"]",
    )
    .await
    .click()
    .await
    .unwrap();
    click(browser, "form.create-token button[type=submit]").await;
    let shown = wait_for(browser, "output#new-token").await;
    let token = shown.text().await.unwrap().trim().to_owned();
    assert!(token.len() > 30, "{token}");
    // The script shows the copy button (hidden for a page without script).
    let copy = wait_for(browser, "button[data-copy=new-token]").await;
    assert!(copy.is_displayed().await.unwrap(), "the copy button");
    assert!(
        text(browser).await.contains("it will not be shown again"),
        "the warning"
    );
    screenshot(browser, shot).await;
    token
}

/// `GET /demo/me` with `token`: its status.
async fn demo_me(http: &Http, base: &str, token: &str) -> http::StatusCode {
    let bearer = format!("Bearer {token}");
    http.send(
        http::Method::GET,
        &format!("{base}/demo/me"),
        &[("authorization", &bearer)],
        String::new(),
    )
    .await
    .0
}

#[test]
fn journey_1_a_token_is_shown_once_works_and_is_revoked_on_the_page() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("agents.db").display());
    in_chromium(&driver, &db, journey_1);
}

async fn journey_1(browser: Client, base: String, password: String) {
    let http = Http::new();
    sign_in(&browser, &base, "demo", &password).await;
    wait_for(&browser, "form[action=\"/agents\"]").await;
    screenshot(&browser, "agents-home").await;

    // An agent's name that cannot be one: refused, and shown as text.
    fill(
        &browser,
        "form[action=\"/agents\"] input[name=slug]",
        SCRIPT,
    )
    .await;
    click(&browser, "form[action=\"/agents\"] button[type=submit]").await;
    wait_for(&browser, "main h1").await;
    assert!(text(&browser).await.contains("Not done"), "a refusal");
    assert_no_injection(&browser, "agent name").await;
    screenshot(&browser, "agents-create-refused").await;

    // Create an agent.
    browser.goto(&format!("{base}/")).await.unwrap();
    fill(
        &browser,
        "form[action=\"/agents\"] input[name=slug]",
        "journey-bot",
    )
    .await;
    click(&browser, "form[action=\"/agents\"] button[type=submit]").await;
    wait_for(&browser, "form.create-token").await;
    assert!(browser.current_url().await.unwrap().path() == "/agents/journey-bot");
    assert!(text(&browser).await.contains("Agent created."));
    screenshot(&browser, "agent-new").await;

    // Create a token: shown once; it works.
    let label = format!("{SCRIPT}{IMAGE}");
    let token = create_token(&browser, &label, "token-shown-once").await;
    assert_no_injection(&browser, "token label (shown once)").await;
    assert_eq!(demo_me(&http, &base, &token).await, http::StatusCode::OK);

    // Reloading the page posts the form again: nothing is made, the token is not shown.
    browser.refresh().await.ok();
    wait_for(&browser, "main h1").await;
    let source = browser.source().await.unwrap();
    assert!(!source.contains(&token), "a reload shows the token again");
    screenshot(&browser, "token-reloaded").await;

    // The agent page lists it, escaped, without the secret; the chart counts the request.
    browser
        .goto(&format!("{base}/agents/journey-bot"))
        .await
        .unwrap();
    let row = wait_for(&browser, "table.tokens tbody tr").await;
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains(SCRIPT), "the label as text: {row_text}");
    assert_eq!(
        browser
            .find_all(Locator::Css("table.tokens tbody tr"))
            .await
            .unwrap()
            .len(),
        1,
        "the reload made no second token"
    );
    assert_no_injection(&browser, "token label (agent page)").await;
    assert!(!browser.source().await.unwrap().contains(&token));

    // Revoke it on the page: refused from then on — within the verdict cache's bound (1 s:
    // `serve` on SQLite learns the change from the change log, read every quarter of it).
    click(&browser, "table.tokens button[name=revoke]").await;
    wait_for(&browser, "p.notice.ok").await;
    assert!(text(&browser).await.contains("Token revoked"));
    let revoked = std::time::Instant::now();
    while demo_me(&http, &base, &token).await != http::StatusCode::UNAUTHORIZED {
        assert!(
            revoked.elapsed() < std::time::Duration::from_millis(1_500),
            "still admitted past the cache bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // And it stays refused.
    for _ in 0..3 {
        assert_eq!(
            demo_me(&http, &base, &token).await,
            http::StatusCode::UNAUTHORIZED
        );
    }
    // The activity: one admitted, one refused (written by the audit writer in the
    // background: reload until it shows).
    let until = std::time::Instant::now() + PATIENCE;
    loop {
        let source = browser.source().await.unwrap();
        if source.contains("Requests in the last 24 hours: 1 admitted, 1 refused.") {
            break;
        }
        assert!(std::time::Instant::now() < until, "{source}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        browser.refresh().await.unwrap();
    }
    wait_for(&browser, "svg.chart rect.refused").await;
    screenshot(&browser, "agent-owner").await;
    let chart = wait_for(&browser, "section[aria-labelledby=activity]").await;
    let png = chart.screenshot().await.unwrap();
    std::fs::write(
        crate::browser::screenshots_dir().join("agent-activity-chart.png"),
        png,
    )
    .unwrap();

    // Reloading, and going back through the history, never shows it again.
    browser.refresh().await.unwrap();
    wait_for(&browser, "main h1").await;
    assert!(!browser.source().await.unwrap().contains(&token));
    for step in 0..4 {
        if browser.back().await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let source = browser.source().await.unwrap_or_default();
        assert!(
            !source.contains(&token),
            "back {step}: the token shown again"
        );
    }

    // The policy: its form, a payload refused and shown as text, then a policy saved.
    browser
        .goto(&format!("{base}/agents/journey-bot/policy"))
        .await
        .unwrap();
    wait_for(&browser, "textarea[name=allow]").await;
    screenshot(&browser, "agent-policy").await;
    click(&browser, "input[name=scope][value=listed]").await;
    fill(
        &browser,
        "textarea[name=allow]",
        &format!("posts:read\n{IMAGE}"),
    )
    .await;
    click(&browser, "form[action$=\"/policy\"] button[type=submit]").await;
    wait_for(&browser, "main h1").await;
    assert!(text(&browser).await.contains("Not done"));
    assert_no_injection(&browser, "policy").await;
    browser
        .goto(&format!("{base}/agents/journey-bot/policy"))
        .await
        .unwrap();
    click(&browser, "input[name=scope][value=listed]").await;
    fill(&browser, "textarea[name=allow]", "posts:read\nposts:write").await;
    fill(&browser, "textarea[name=deny]", "posts:delete").await;
    click(&browser, "form[action$=\"/policy\"] button[type=submit]").await;
    wait_for(&browser, "p.notice.ok").await;
    assert!(text(&browser).await.contains("posts:delete"));

    // Disable and delete ask first.
    click(&browser, "a[href=\"/agents/journey-bot/disable\"]").await;
    wait_for(&browser, "form[action=\"/agents/journey-bot/disable\"]").await;
    screenshot(&browser, "agent-confirm-disable").await;
    click(
        &browser,
        "form[action=\"/agents/journey-bot/disable\"] button",
    )
    .await;
    wait_for(&browser, "form[action=\"/agents/journey-bot/enable\"]").await;
    screenshot(&browser, "agent-disabled").await;
    click(&browser, "a[href=\"/agents/journey-bot/delete\"]").await;
    wait_for(&browser, "form[action=\"/agents/journey-bot/delete\"]").await;
    screenshot(&browser, "agent-confirm-delete").await;
    click(
        &browser,
        "form[action=\"/agents/journey-bot/delete\"] button",
    )
    .await;
    wait_for(&browser, "form[action=\"/agents\"]").await;
    let home = text(&browser).await;
    assert!(home.contains("Agent deleted"), "{home}");
    assert!(!home.contains("journey-bot"), "{home}");
}

#[test]
fn journey_3_an_operator_sees_the_tokens_and_may_not_revoke_them() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("operator.db").display());
    let for_scenario = db.clone();
    in_chromium(&driver, &db, move |browser, base, password| {
        journey_3(browser, base, password, for_scenario)
    });
}

async fn journey_3(browser: Client, base: String, password: String, db: String) {
    let http = Http::new();
    let add = db.clone();
    tokio::task::spawn_blocking(move || {
        crate::cluster::cli(
            &add,
            &["user", "add", "olga", "--password-stdin"],
            &format!("{OPERATOR_PASSWORD}\n"),
        );
    })
    .await
    .unwrap();

    // The owner makes a token and grants olga operator on the demo agent, on the page.
    sign_in(&browser, &base, "demo", &password).await;
    browser
        .goto(&format!("{base}/agents/demo-bot"))
        .await
        .unwrap();
    let token = create_token(&browser, "kept by the owner", "token-shown-once-demo").await;
    assert_eq!(demo_me(&http, &base, &token).await, http::StatusCode::OK);
    browser
        .goto(&format!("{base}/agents/demo-bot"))
        .await
        .unwrap();
    // A user that does not exist, with a payload for a name: refused, shown as text.
    fill(&browser, "form.grant input[name=user]", IMAGE).await;
    click(&browser, "form.grant button[type=submit]").await;
    wait_for(&browser, "main h1").await;
    assert!(text(&browser).await.contains("Not done"));
    assert_no_injection(&browser, "grant user").await;
    browser
        .goto(&format!("{base}/agents/demo-bot"))
        .await
        .unwrap();
    fill(&browser, "form.grant input[name=user]", "olga").await;
    click(&browser, "form.grant button[type=submit]").await;
    wait_for(&browser, "p.notice.ok").await;
    assert!(text(&browser).await.contains("olga"));
    screenshot(&browser, "agent-owner-grants").await;
    click(&browser, "form.signout button[type=submit]").await;
    wait_for(&browser, "form[action=\"/login\"]").await;

    // olga sees the tokens, and no button to revoke, rotate or create one.
    sign_in(&browser, &base, "olga", OPERATOR_PASSWORD).await;
    browser
        .goto(&format!("{base}/agents/demo-bot"))
        .await
        .unwrap();
    let row = wait_for(&browser, "table.tokens tbody tr").await;
    let id = row.attr("data-token").await.unwrap().expect("a token id");
    assert!(text(&browser).await.contains("kept by the owner"));
    for css in [
        "button[name=revoke]",
        "form[action$=\"/tokens/revoke\"]",
        "form[action$=\"/tokens/rotate\"]",
        "form.create-token",
        "form.grant",
        "a[href$=\"/policy\"]",
        "a[href$=\"/delete\"]",
    ] {
        assert!(
            browser.find(Locator::Css(css)).await.is_err(),
            "an operator is shown {css}"
        );
    }
    assert_no_injection(&browser, "operator's agent page").await;
    screenshot(&browser, "agent-operator").await;

    // A revoke forged with olga's own cookie and form token: 403, and the token still works.
    let cookie = browser
        .get_named_cookie("agent_auth_session")
        .await
        .unwrap()
        .value()
        .to_owned();
    let csrf = wait_for(&browser, "form.signout input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/agents/demo-bot/tokens/revoke"),
            &[
                ("cookie", &format!("agent_auth_session={cookie}")),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &base),
            ],
            urlencoded(&[("csrf", &csrf), ("token", &id)]),
        )
        .await;
    assert_eq!(status, http::StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Not allowed"), "{body}");
    assert_eq!(demo_me(&http, &base, &token).await, http::StatusCode::OK);
    // The page's refusal, as the browser would show it.
    browser
        .goto(&format!("{base}/agents/demo-bot/delete"))
        .await
        .unwrap();
    wait_for(&browser, "main h1").await;
    assert!(text(&browser).await.contains("Not allowed"));
    screenshot(&browser, "agent-operator-refused").await;
}
