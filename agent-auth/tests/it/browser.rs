//! A real browser against `serve`'s authorization server: headless Chromium, driven over
//! WebDriver (ChromeDriver, `fantoccini`), signs in, reads the consent page, unticks a
//! capability and allows; the test's own loopback client receives the redirect, exchanges the
//! code (PKCE, `resource`) and finds the token can read the demo posts but not write them.
//! Then, still signed in, the browser denies a second request. What a form post with a cookie
//! jar cannot show is shown here: the pages work in a browser as it is (its cookies, its
//! `Origin` header, its form submission, its redirects), and no secret but the code reaches
//! a URL the browser shows.
//!
//! Needs ChromeDriver (`AGENT_AUTH_TEST_CHROMEDRIVER`, the `chromedriver` binary) and Chromium
//! (`AGENT_AUTH_TEST_CHROMIUM`, `/usr/bin/chromium` unless set); skips with a notice without
//! them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::{serve_demo, services_required, skip_notice};

/// How long any one step may take: Chromium starts slowly on a loaded machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// The requested capabilities; the person unticks the second.
pub(crate) const SCOPE: &str = "posts:read posts:write";
const UNTICKED: &str = "posts:write";
const CLIENT_NAME: &str = "Browser test client";

pub(crate) fn chromedriver() -> Option<PathBuf> {
    match std::env::var_os("AGENT_AUTH_TEST_CHROMEDRIVER") {
        Some(driver) if !driver.is_empty() => Some(driver.into()),
        _ if services_required() => {
            panic!("AGENT_AUTH_TEST_CHROMEDRIVER is not set but AGENT_AUTH_REQUIRE_SERVICES is")
        }
        _ => {
            skip_notice("Chromium (browser)", "AGENT_AUTH_TEST_CHROMEDRIVER");
            None
        }
    }
}

pub(crate) fn chromium() -> String {
    std::env::var("AGENT_AUTH_TEST_CHROMIUM")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".to_owned())
}

/// A child process killed when the test ends, passing or not.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ChromeDriver on a port of its own. Dropped, it is asked to shut down (which quits the
/// browsers it started), then killed if it has not.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start(binary: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut driver = Self { child, port };
        let until = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited: {status}");
            }
            assert!(Instant::now() < until, "chromedriver does not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = write!(
                stream,
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            );
        }
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OAuth client's loopback redirect target: answers every request `200 done` and passes
/// on the request line of each `/callback` (the browser also asks for a favicon, and may
/// open connections it never uses: each is read on a thread of its own, with a deadline).
pub(crate) fn callback_listener() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let sender = sender.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                // The rest of the head, so that the browser sees a whole exchange.
                let mut header = String::new();
                while reader.read_line(&mut header).unwrap_or(0) > 2 {
                    header.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\
                      connection: close\r\n\r\ndone",
                );
                if line.starts_with("GET /callback") {
                    let _ = sender.send(line.trim_end().to_owned());
                }
            });
        }
    });
    (port, receiver)
}

/// A small HTTP client for the OAuth client's own requests (not the browser's).
pub(crate) struct Http {
    client: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(crate) fn new() -> Self {
        Self {
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (http::StatusCode, String) {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    getrandom::fill(&mut buf).unwrap();
    hex::encode(buf)
}

pub(crate) fn urlencoded(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// One authorization request: its URL and what the client keeps to check the answer.
pub(crate) struct Authorization {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) verifier: String,
}

pub(crate) fn authorization(base: &str, client_id: &str, redirect_uri: &str) -> Authorization {
    let verifier = random_hex(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_hex(16);
    let query = urlencoded(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", &state),
        ("resource", &format!("{base}/demo")),
    ]);
    Authorization {
        url: format!("{base}/oauth/authorize?{query}"),
        state,
        verifier,
    }
}

/// Waits until the browser is at a URL starting with `prefix`, and returns it.
pub(crate) async fn wait_for_url(browser: &Client, prefix: &str) -> url::Url {
    let until = Instant::now() + PATIENCE;
    loop {
        // While a navigation is under way the driver may answer with an error: ask again.
        match browser.current_url().await {
            Ok(url) if url.as_str().starts_with(prefix) => return url,
            _ => {}
        }
        if Instant::now() > until {
            let at = browser.current_url().await.map(|u| u.to_string());
            let page = browser.source().await.unwrap_or_default();
            panic!("the browser never reached {prefix}; it is at {at:?}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The query the callback received, as pairs; checked to be the query of the URL the browser
/// shows.
pub(crate) fn callback_query(
    callbacks: &mpsc::Receiver<String>,
    shown: &url::Url,
) -> Vec<(String, String)> {
    let line = callbacks
        .recv_timeout(PATIENCE)
        .expect("the callback was not called");
    let target = line
        .strip_prefix("GET ")
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .unwrap_or_else(|| panic!("request line {line:?}"));
    let query = target
        .strip_prefix("/callback?")
        .unwrap_or_else(|| panic!("no query in {line:?}"));
    assert_eq!(Some(query), shown.query(), "what the browser shows");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
    let value = values.next()?;
    assert!(values.next().is_none(), "{name} twice in {pairs:?}");
    Some(value)
}

/// The consent page's text, after checking that it names the client and offers every
/// requested capability, each ticked.
async fn read_consent(browser: &Client) -> String {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap_or_else(|e| panic!("no consent page: {e}"));
    let text = browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(CLIENT_NAME), "the client's name: {text}");
    for capability in SCOPE.split(' ') {
        assert!(text.contains(capability), "{capability}: {text}");
        let checkbox = browser
            .find(Locator::Css(&format!(
                "input[type=checkbox][name=capability][value=\"{capability}\"]"
            )))
            .await
            .unwrap_or_else(|e| panic!("no checkbox for {capability}: {e}"));
        assert!(checkbox.is_selected().await.unwrap(), "{capability} ticked");
    }
    text
}

#[test]
fn chromium_signs_in_consents_with_less_and_denies() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("oauth.db").display());
    in_chromium(&driver, &db, scenario);
}

/// Runs `scenario(browser, base URL, demo password)` in headless Chromium against `serve
/// --demo` on the database `db`: the browser is closed and the server stopped whatever
/// happens, and a failure shows the server's log tail.
pub(crate) fn in_chromium<F, Fut>(driver: &Path, db: &str, scenario: F)
where
    F: FnOnce(Client, String, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (child, base, password, log) = serve_demo(db);
    let serve = Killed(child);
    let outcome = with_browser(driver, move |browser| scenario(browser, base, password));
    drop(serve);
    if let Err(failure) = outcome {
        let log = log.join().unwrap_or_default();
        eprintln!(
            "--- server log (tail) ---\n{}",
            log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
        );
        std::panic::resume_unwind(failure);
    }
}

/// Runs `scenario(browser)` in a fresh headless Chromium (ChromeDriver at `driver`): the
/// browser is closed whatever happens; the scenario's panic, if any, is returned.
pub(crate) fn with_browser<F, Fut>(
    driver: &Path,
    scenario: F,
) -> Result<(), Box<dyn std::any::Any + Send>>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start(driver);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage"],
            }),
        );
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}"));
        // The scenario on a task of its own: should it panic, the browser is still closed.
        let outcome = tokio::spawn(scenario(browser.clone())).await;
        let _ = browser.close().await;
        outcome
    });
    drop(driver);
    outcome.map_err(|failure| failure.into_panic())
}

async fn scenario(browser: Client, base: String, password: String) {
    let http = Http::new();
    let (port, callbacks) = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let resource = format!("{base}/demo");

    // The client registers itself: public (PKCE), a loopback redirect.
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{base}/oauth/register"),
            &[("content-type", "application/json")],
            json!({
                "client_name": CLIENT_NAME,
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

    // Not signed in: the authorization request leads to the sign-in form.
    let first = authorization(&base, &client_id, &redirect_uri);
    browser.goto(&first.url).await.unwrap();
    let sign_in = wait_for_url(&browser, &format!("{base}/login")).await;
    let mut seen = vec![sign_in];
    let sign_in_form = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("form[action=\"/login\"]"))
        .await
        .unwrap();
    sign_in_form
        .find(Locator::Css("input[name=user]"))
        .await
        .unwrap()
        .send_keys("demo")
        .await
        .unwrap();
    sign_in_form
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(&password)
        .await
        .unwrap();
    sign_in_form
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Signed in, back at the request: the consent page. The person unticks posts:write.
    seen.push(wait_for_url(&browser, &format!("{base}/oauth/authorize")).await);
    read_consent(&browser).await;
    let write = browser
        .find(Locator::Css(&format!(
            "input[name=capability][value=\"{UNTICKED}\"]"
        )))
        .await
        .unwrap();
    write.click().await.unwrap();
    assert!(!write.is_selected().await.unwrap(), "unticked");
    browser
        .find(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Back at the client with a code, the state and the issuer.
    let shown = wait_for_url(&browser, &redirect_uri).await;
    let answer = callback_query(&callbacks, &shown);
    assert_eq!(param(&answer, "state"), Some(first.state.as_str()));
    assert_eq!(param(&answer, "iss"), Some(base.as_str()));
    assert_eq!(param(&answer, "error"), None, "{answer:?}");
    let code = param(&answer, "code").expect("a code").to_owned();
    assert!(code.len() >= 20, "{code}");

    // The client exchanges the code: a token for posts:read only.
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
                ("code_verifier", &first.verifier),
                ("resource", &resource),
            ]),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let granted: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    assert!(granted.contains(&"posts:read"), "{granted:?}");
    assert!(!granted.contains(&UNTICKED), "{granted:?}");
    let bearer = format!("Bearer {access}");
    let (status, body) = http
        .send(
            http::Method::GET,
            &format!("{resource}/posts"),
            &[("authorization", &bearer)],
            String::new(),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "reading: {body}");
    let (status, body) = http
        .send(
            http::Method::POST,
            &format!("{resource}/posts"),
            &[("authorization", &bearer)],
            String::new(),
        )
        .await;
    assert_eq!(status, http::StatusCode::FORBIDDEN, "writing: {body}");

    // Still signed in: a second request goes straight to consent, and the person denies it.
    let second = authorization(&base, &client_id, &redirect_uri);
    browser.goto(&second.url).await.unwrap();
    seen.push(wait_for_url(&browser, &format!("{base}/oauth/authorize")).await);
    read_consent(&browser).await;
    browser
        .find(Locator::Css("button[name=decision][value=deny]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let denied_at = wait_for_url(&browser, &redirect_uri).await;
    let denied = callback_query(&callbacks, &denied_at);
    assert_eq!(param(&denied, "error"), Some("access_denied"), "{denied:?}");
    assert_eq!(param(&denied, "state"), Some(second.state.as_str()));
    assert_eq!(param(&denied, "iss"), Some(base.as_str()));
    assert_eq!(param(&denied, "code"), None, "{denied:?}");

    // Only the callback's query carries the code; no URL the browser showed carries the
    // token or a verifier.
    for url in &seen {
        assert!(!url.as_str().contains(&code), "the code in {url}");
    }
    for url in seen.iter().chain([&shown, &denied_at]) {
        for secret in [&access, &first.verifier, &second.verifier] {
            assert!(!url.as_str().contains(secret.as_str()), "a secret in {url}");
        }
    }
    assert!(!denied_at.as_str().contains(&code), "{denied_at}");
    assert_eq!(
        shown.query_pairs().filter(|(_, v)| *v == code).count(),
        1,
        "{shown}"
    );
}

/// Where the browser tests write their screenshots: `AGENT_AUTH_TEST_SCREENSHOTS`, else
/// `agent-auth-screenshots` in the temporary directory. `.ci/run` prints it.
pub(crate) fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("AGENT_AUTH_TEST_SCREENSHOTS")
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || std::env::temp_dir().join("agent-auth-screenshots"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A screenshot of what the browser shows now, as `NAME.png` in [`screenshots_dir`]. The
/// window is made tall enough for the whole page first, so a long table is seen whole.
pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let height = browser
        .execute(
            "return Math.min(4000, document.documentElement.scrollHeight);",
            vec![],
        )
        .await
        .ok()
        .and_then(|h| h.as_u64())
        .unwrap_or(900)
        .max(700);
    let _ = browser.set_window_size(1280, height as u32).await;
    let png = browser
        .screenshot()
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Signs `user` in with `password` through the sign-in form at `base`, and waits for the page
/// it leads to.
pub(crate) async fn sign_in(browser: &Client, base: &str, user: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    let form = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("form[action=\"/login\"]"))
        .await
        .unwrap();
    form.find(Locator::Css("input[name=user]"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    form.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Signed in: the layout's sign-out form appears.
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("form[action=\"/logout\"]"))
        .await
        .unwrap_or_else(|e| panic!("not signed in as {user}: {e}"));
}

/// Asserts that nothing injected reached the page `page` shows: no script but the layout's
/// own, no image from a payload (`<img src=x …>`), nothing set by one (`window.pwned`).
pub(crate) async fn assert_no_injection(browser: &Client, page: &str) {
    let found = browser
        .execute(
            "return [document.querySelectorAll('script:not([src=\"/assets/app.js\"])').length, \
             document.querySelectorAll('img[src=x]').length, typeof window.pwned];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!([0, 0, "undefined"]),
        "{page}: injected markup reached the page"
    );
}
