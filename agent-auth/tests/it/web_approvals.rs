//! Journey 2 in a real browser: a supervised agent's payment waits; the owner's approvals page,
//! open since before the request, shows it without a reload; the owner approves it there; the
//! agent's retry goes through; the audit page, filtered by the agent, shows the approval
//! requested, granted and used. What the agent wrote (payees, a task id with markup) renders
//! as text on both pages.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    Http, PATIENCE, assert_no_injection, chromedriver, in_chromium, screenshot, sign_in,
    wait_for_url,
};
use crate::support::cli;

const SCRIPT: &str = "<script>window.pwned=1</script>";
const IMG: &str = "\"><img src=x onerror=window.pwned=1>";

#[test]
fn chromium_approves_a_waiting_payment_and_finds_it_in_the_trail() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("approvals.db").display());
    let scenario_db = db.clone();
    in_chromium(&driver, &db, move |browser, base, password| {
        journey(browser, base, password, scenario_db)
    });
}

/// `payer` pays `to`: the status and the JSON answer.
async fn pay(http: &Http, base: &str, token: &str, amount: u64, to: &str) -> (u16, Value) {
    let body = json!({"amount": amount, "currency": "EUR", "to": to}).to_string();
    let authorization = format!("Bearer {token}");
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/demo/payments"),
            &[
                ("authorization", authorization.as_str()),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
    (
        status.as_u16(),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// The text of the element `css`.
async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn journey(browser: Client, base: String, password: String, db: String) {
    cli(
        &db,
        &[
            "agent",
            "create",
            "payer",
            "--owner",
            "demo",
            "--type",
            "supervised",
        ],
    );
    let token = cli(
        &db,
        &[
            "token",
            "create",
            "payer",
            "--label",
            "e2e",
            "--task-id",
            SCRIPT,
        ],
    );
    let token = token.lines().next().unwrap().to_owned();
    let http = Http::new();

    sign_in(&browser, &base, "demo", &password).await;
    // The agent's approvals used, before any was asked for: none.
    browser
        .goto(&format!("{base}/audit?agent=payer&action=approval_used"))
        .await
        .unwrap();
    let empty = text_of(&browser, "main").await;
    assert!(empty.contains("No events match."), "{empty}");
    screenshot(&browser, "audit-empty").await;

    // The approvals page, opened before the agent asks.
    browser.goto(&format!("{base}/approvals")).await.unwrap();
    let empty = text_of(&browser, "#pending-approvals").await;
    assert!(empty.contains("Nothing is waiting"), "{empty}");
    screenshot(&browser, "approvals-empty").await;
    // The page's own marker: a reload would lose it, so it shows the page was never reloaded.
    browser
        .execute("window.openedOnce = true;", vec![])
        .await
        .unwrap();

    let (status, waiting) = pay(&http, &base, &token, 50, "ACME Corp").await;
    assert_eq!(status, 403, "{waiting}");
    assert_eq!(waiting["error"], "approval_required");
    let id = waiting["approval_id"].as_str().unwrap().to_owned();

    // It appears on the open page.
    let card = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(&format!("[data-approval=\"{id}\"]")))
        .await
        .unwrap_or_else(|e| panic!("the approval never appeared: {e}"));
    let still_open = browser
        .execute("return window.openedOnce === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still_open, json!(true), "shown without a reload");
    let shown = card.text().await.unwrap();
    for expected in [
        "Pay 50 EUR to ACME Corp",
        "payer",
        "POST /demo/payments",
        "payments:send",
        "\"to\": \"ACME Corp\"",
        SCRIPT,
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }

    // Two more, with markup for payees: they wait beside it, as text.
    for (amount, to) in [(7, IMG), (9, SCRIPT)] {
        let (status, body) = pay(&http, &base, &token, amount, to).await;
        assert_eq!(status, 403, "{body}");
    }
    let until = Instant::now() + PATIENCE;
    while browser
        .find_all(Locator::Css("[data-approval]"))
        .await
        .unwrap()
        .len()
        < 3
    {
        assert!(Instant::now() < until, "the others never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = text_of(&browser, "#pending-approvals").await;
    assert!(all.contains(&format!("Pay 9 EUR to {SCRIPT}")), "{all}");
    assert!(all.contains(&format!("Pay 7 EUR to {IMG}")), "{all}");
    assert_no_injection(&browser, "approvals").await;
    screenshot(&browser, "approvals-pending").await;

    // Approve the first in the browser.
    browser
        .find(Locator::Css(&format!(
            "form[action=\"/approvals/{id}/approve\"] button"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/approvals?done=approved")).await;
    let notice = text_of(&browser, ".notice").await;
    assert!(notice.starts_with("Approved"), "{notice}");
    let history = text_of(&browser, ".approval-history").await;
    assert!(
        history.contains("Pay 50 EUR to ACME Corp") && history.contains("demo"),
        "{history}"
    );
    assert_no_injection(&browser, "approvals after approving").await;
    screenshot(&browser, "approvals-approved").await;

    // The agent's retry goes through, once.
    let (status, paid) = pay(&http, &base, &token, 50, "ACME Corp").await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["paid"]["to"], "ACME Corp");

    // The trail, filtered by the agent: requested, granted, used (the writer batches: wait).
    let until = Instant::now() + PATIENCE;
    let trail = loop {
        browser
            .goto(&format!("{base}/audit?agent=payer"))
            .await
            .unwrap();
        let trail = text_of(&browser, "table.trail tbody").await;
        if ["approval_requested", "approval_granted", "approval_used"]
            .iter()
            .all(|action| trail.contains(action))
        {
            break trail;
        }
        assert!(Instant::now() < until, "the trail lacks a step:\n{trail}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(trail.contains(&format!("task {SCRIPT}")), "{trail}");
    let selected = text_of(&browser, "#agent option[selected]").await;
    assert_eq!(selected, "payer");
    // Newest first: used after granted after requested.
    let at = |action: &str| trail.find(action).unwrap();
    assert!(at("approval_used") < at("approval_granted"), "{trail}");
    assert!(at("approval_granted") < at("approval_requested"), "{trail}");
    assert_no_injection(&browser, "audit").await;
    screenshot(&browser, "audit-filtered").await;

    // Narrowed further through the form: only the grant.
    browser
        .find(Locator::Css("#action"))
        .await
        .unwrap()
        .select_by_value("approval_granted")
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.filter button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(
        &browser,
        &format!("{base}/audit?agent=payer&action=approval_granted"),
    )
    .await;
    let granted = text_of(&browser, "table.trail tbody").await;
    assert!(granted.contains("approval_granted"), "{granted}");
    assert!(
        !granted.contains("approval_requested") && !granted.contains("approval_used"),
        "{granted}"
    );
    assert!(granted.contains("by demo"), "who decided: {granted}");
    screenshot(&browser, "audit-granted").await;

    // By outcome: the three payments refused while they waited, nothing else.
    browser
        .goto(&format!("{base}/audit?agent=payer&outcome=denied"))
        .await
        .unwrap();
    let denied = browser
        .find_all(Locator::Css("table.trail tbody tr"))
        .await
        .unwrap();
    assert_eq!(denied.len(), 3);
    for row in denied {
        let text = row.text().await.unwrap();
        assert!(text.contains("POST /demo/payments → 403"), "{text}");
    }
}
