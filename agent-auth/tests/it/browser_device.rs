//! The device flow's pages in a real browser (the harness of [`browser`](super::browser)):
//! headless Chromium opens the verification URI a device shows, is sent to sign in and back,
//! types a wrong user code (the page says so and keeps the form), then the right one in lower
//! case, reads the consent page — the client, the code to compare, each capability ticked —
//! and allows. The test's device, polling over HTTP, then gets a token that reads the demo
//! posts, and no URL the browser showed carries the device code or the token.
//!
//! Needs ChromeDriver and Chromium as [`browser`](super::browser) does; skips with a notice
//! without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{Http, PATIENCE, chromedriver, in_chromium, urlencoded, wait_for_url};

const CLIENT_NAME: &str = "Browser device client";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[test]
fn chromium_enters_a_wrong_code_then_the_right_one_and_allows_a_device() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("device.db").display());
    in_chromium(&driver, &db, scenario);
}

/// Types `text` into the page's user code field, emptied first, and submits the form.
async fn enter(browser: &Client, text: &str) {
    let field = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap_or_else(|e| panic!("no user code field: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The page's text, once `selector` is on it.
async fn text_once(browser: &Client, selector: &str) -> String {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"));
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the page says `needle`.
async fn wait_for_text(browser: &Client, needle: &str) {
    let until = Instant::now() + PATIENCE;
    loop {
        if let Ok(body) = browser.find(Locator::Css("body")).await {
            if body.text().await.is_ok_and(|text| text.contains(needle)) {
                return;
            }
        }
        let page = browser.source().await.unwrap_or_default();
        assert!(
            Instant::now() < until,
            "the page never said {needle:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scenario(browser: Client, base: String, password: String) {
    let http = Http::new();
    let form = [("content-type", "application/x-www-form-urlencoded")];

    // The device: a client for the device grant alone, and its request.
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/register"),
            &[("content-type", "application/json")],
            json!({
                "client_name": CLIENT_NAME,
                "grant_types": [GRANT],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, http::StatusCode::CREATED, "{body}");
    let client_id = serde_json::from_str::<Value>(&body).unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = format!("{base}/demo");
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/device_authorization"),
            &form,
            urlencoded(&[
                ("client_id", &client_id),
                ("scope", "posts:read"),
                ("resource", &resource),
            ]),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let asked = Instant::now();
    let device: Value = serde_json::from_str(&body).unwrap();
    let device_code = device["device_code"].as_str().unwrap().to_owned();
    let user_code = device["user_code"].as_str().unwrap().to_owned();
    let verification_uri = device["verification_uri"].as_str().unwrap().to_owned();

    // The person opens the URI the device shows: sent to sign in, then back.
    browser.goto(&verification_uri).await.unwrap();
    let mut seen = vec![wait_for_url(&browser, &format!("{base}/login")).await];
    let sign_in = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("form[action=\"/login\"]"))
        .await
        .unwrap();
    for (name, value) in [("user", "demo"), ("password", password.as_str())] {
        sign_in
            .find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    sign_in
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    seen.push(wait_for_url(&browser, &verification_uri).await);

    // A wrong code: said so, the form kept, tries counted.
    let wrong = if user_code == "BCDF-GHJK" {
        "BCDF-GHJL"
    } else {
        "BCDF-GHJK"
    };
    enter(&browser, wrong).await;
    let page = text_once(&browser, "p[role=alert]").await;
    assert!(page.contains("not right"), "{page}");
    assert!(page.contains("You can try 4 more times"), "{page}");

    // The right one, as people type it: the consent page, with the code to compare.
    enter(&browser, &user_code.to_lowercase().replace('-', " ")).await;
    let page = text_once(&browser, "button[name=decision][value=allow]").await;
    assert!(page.contains(CLIENT_NAME), "{page}");
    assert!(page.contains(&user_code), "the code to compare: {page}");
    let checkbox = browser
        .find(Locator::Css(
            "input[type=checkbox][name=capability][value=\"posts:read\"]",
        ))
        .await
        .unwrap();
    assert!(checkbox.is_selected().await.unwrap(), "posts:read ticked");
    browser
        .find(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "Device connected").await;
    seen.push(browser.current_url().await.unwrap());

    // The device polls once the interval has passed: a token that reads the posts.
    tokio::time::sleep(Duration::from_millis(5200).saturating_sub(asked.elapsed())).await;
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/token"),
            &form,
            urlencoded(&[
                ("grant_type", GRANT),
                ("client_id", &client_id),
                ("device_code", &device_code),
            ]),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["scope"], "posts:read");
    let (status, body) = http
        .send(
            http::Method::GET,
            &format!("{resource}/posts"),
            &[("authorization", &format!("Bearer {access}"))],
            String::new(),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    for url in &seen {
        for secret in [&device_code, &access] {
            assert!(!url.as_str().contains(secret.as_str()), "a secret in {url}");
        }
    }
}
