//! Journey 5 of the pages: a browser session is the database's, not a process's. Signed in on
//! node A (PostgreSQL), the same cookie works on node B; both nodes restarted, still signed in;
//! the password changed on B's account page, A signs the old session out — the browser's and
//! another one's.
//!
//! Needs PostgreSQL (`AGENT_AUTH_TEST_POSTGRES_URL`) and Chromium with ChromeDriver
//! (`AGENT_AUTH_TEST_CHROMEDRIVER`); skips with a notice without them, fails without them
//! under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use fantoccini::{Client, Locator};

use crate::browser::{PATIENCE, chromedriver, screenshot, sign_in, with_browser};
use crate::cluster::{Database, Node, PASSWORD, postgres_url, request, seed};

const NEW_PASSWORD: &str = "a new and longer s3cret";

/// Who the page says is signed in, if anyone: the layout's account link.
async fn signed_in_as(browser: &Client, base: &str) -> Option<String> {
    browser.goto(&format!("{base}/")).await.unwrap();
    // Either the layout of a signed-in page or the sign-in form.
    let page = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(
            "form[action=\"/logout\"], form[action=\"/login\"]",
        ))
        .await
        .unwrap();
    if page.attr("action").await.unwrap().as_deref() == Some("/login") {
        return None;
    }
    Some(
        browser
            .find(Locator::Css("header .who"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
}

/// `GET /` on `node` with `cookie`: 200 when signed in, 303 to the sign-in form when not.
async fn home_status(node: &Node, cookie: &str) -> u16 {
    request(&node.address, "GET", "/", &[("Cookie", cookie)], "")
        .await
        .status
}

#[test]
fn a_session_survives_restarts_crosses_nodes_and_ends_with_the_password() {
    let Some(postgres) = postgres_url() else {
        return;
    };
    let Some(driver) = chromedriver() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(Database::create(&postgres, "web_sessions"));
    seed(&db.url);
    let url = db.url.clone();
    let outcome = with_browser(&driver, move |browser| async move {
        let a = Node::start(&url, &[]);
        let b = Node::start(&url, &[]);
        let (base_a, base_b) = (
            format!("http://{}", a.address),
            format!("http://{}", b.address),
        );

        sign_in(&browser, &base_a, "alice", PASSWORD).await;
        assert_eq!(
            signed_in_as(&browser, &base_a).await.as_deref(),
            Some("alice")
        );
        // Another session of alice's, outside the browser, begun on A too.
        let other = crate::cluster::sign_in(&a).await;
        assert_eq!(home_status(&a, &other).await, 200);

        // Cookies belong to a host, not a port: the browser sends A's cookie to B.
        assert_eq!(
            signed_in_as(&browser, &base_b).await.as_deref(),
            Some("alice"),
            "node B knows node A's session"
        );
        assert_eq!(home_status(&b, &other).await, 200);

        // Both nodes restarted: nothing of the sessions was in their memory.
        drop((a, b));
        let a = Node::start(&url, &[]);
        let b = Node::start(&url, &[]);
        let (base_a, base_b) = (
            format!("http://{}", a.address),
            format!("http://{}", b.address),
        );
        assert_eq!(
            signed_in_as(&browser, &base_a).await.as_deref(),
            Some("alice")
        );
        assert_eq!(
            signed_in_as(&browser, &base_b).await.as_deref(),
            Some("alice")
        );
        assert_eq!(home_status(&a, &other).await, 200);

        // The password changed on B's account page.
        browser.goto(&format!("{base_b}/account")).await.unwrap();
        let form = browser
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("form[action=\"/account/password\"]"))
            .await
            .unwrap();
        screenshot(&browser, "account").await;
        for (field, value) in [
            ("current", PASSWORD),
            ("new", NEW_PASSWORD),
            ("again", NEW_PASSWORD),
        ] {
            form.find(Locator::Css(&format!("input[name={field}]")))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        form.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The page says so and offers to sign in again.
        browser
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("a[href^=\"/login\"]"))
            .await
            .unwrap();
        screenshot(&browser, "account-password-changed").await;

        // A signs both old sessions out; the new password signs in.
        assert_eq!(
            signed_in_as(&browser, &base_a).await,
            None,
            "the browser's session on A"
        );
        assert_eq!(home_status(&a, &other).await, 303, "the other session on A");
        assert_eq!(home_status(&b, &other).await, 303, "the other session on B");
        sign_in(&browser, &base_a, "alice", NEW_PASSWORD).await;
        assert_eq!(
            signed_in_as(&browser, &base_b).await.as_deref(),
            Some("alice")
        );
    });
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure);
    }
}
