//! The pages under attack (issue 22), against `serve --demo` over loopback.
//!
//! A crawler signs in (as the demo user, as an admin and as a plain user), follows every
//! same-site link from `/` breadth-first and collects every form that posts. Each form is
//! refused (403) without its CSRF token and with another session's token, and accepted with
//! its own (the destructive ones last). Every page the crawler saw refuses to be framed by its
//! headers; and in headless Chromium, a page of another origin that frames `/` and `/login`
//! shows nothing of them, while a frame of its own origin shows its form.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use scraper::{ElementRef, Html, Selector};
use url::Url;

use crate::browser::{PATIENCE, chromedriver, in_chromium, sign_in as browser_sign_in};
use crate::support::{self, serve_demo};

/// The fewest forms that post the crawl of the demo user's pages must find, so that it cannot
/// pass by finding none: sign-out, create an agent, the demo agent's token (create, rotate,
/// revoke), grant, policy, disable and delete forms, and the account's password form.
const MIN_FORMS: usize = 10;

/// How many pages one crawl visits at most.
const MAX_PAGES: usize = 300;

/// A form's action whose acceptance changes what later forms act on, or ends the session:
/// posted with its own token only after every other form.
const DESTRUCTIVE: &[&str] = &[
    "logout",
    "delete",
    "revoke",
    "rotate",
    "disable",
    "deactivate",
    "remove",
    "deny",
];

/// `serve --demo` seen from a client without a browser.
struct Site {
    base: Url,
    client: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

/// An answer: its body only when it is a page (`text/html`); an event stream is not read.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn is_page(&self) -> bool {
        (self.headers.get(header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    }

    /// The `name=value` of the cookie `name` it sets.
    fn cookie(&self, name: &str) -> Option<String> {
        (self.headers.get_all(header::SET_COOKIE).iter())
            .filter_map(|v| v.to_str().ok()?.split(';').next())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// A form that posts, as found on a page.
#[derive(Debug, Clone)]
struct PostForm {
    /// The page it is on.
    page: String,
    /// Where it posts: path and query.
    action: String,
    /// What a browser would send of it unchanged (hidden fields, filled-in values, ticked
    /// boxes, the first option of a list, the named submit button).
    fields: Vec<(String, String)>,
}

impl PostForm {
    fn token(&self) -> Option<&str> {
        (self.fields.iter())
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.as_str())
    }

    /// Its fields with the token replaced by `token` (left out, if `None`), URL-encoded.
    fn body_with(&self, token: Option<&str>) -> String {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.fields {
            if name != "csrf" {
                body.append_pair(name, value);
            }
        }
        if let Some(token) = token {
            body.append_pair("csrf", token);
        }
        body.finish()
    }

    /// Fills in the field `name` (as a person types in it).
    fn set(&mut self, name: &str, value: &str) {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_owned(), value.to_owned()));
    }

    fn destructive(&self) -> bool {
        DESTRUCTIVE.iter().any(|word| self.action.contains(word))
    }
}

/// What one crawl saw: every page (path, answer's status and headers) and every form that
/// posts.
struct Crawl {
    pages: Vec<(String, StatusCode, HeaderMap)>,
    forms: Vec<PostForm>,
}

impl Site {
    fn new(base: &str) -> Self {
        Self {
            base: Url::parse(base).unwrap(),
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: Method,
        target: &str,
        cookie: &str,
        form: Option<String>,
    ) -> Reply {
        let url = self.base.join(target).unwrap();
        let mut request = http::Request::builder().method(method).uri(url.as_str());
        if !cookie.is_empty() {
            request = request.header(header::COOKIE, cookie);
        }
        if form.is_some() {
            // As a browser posts a form of this site's page.
            request = request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, self.base.origin().ascii_serialization());
        }
        let body = Full::new(Bytes::from(form.unwrap_or_default()));
        let response =
            tokio::time::timeout(PATIENCE, self.client.request(request.body(body).unwrap()))
                .await
                .unwrap_or_else(|_| panic!("{target}: no answer"))
                .unwrap_or_else(|e| panic!("{target}: {e}"));
        let (parts, body) = response.into_parts();
        let mut reply = Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::new(),
        };
        if reply.is_page() {
            let bytes = tokio::time::timeout(PATIENCE, body.collect())
                .await
                .unwrap_or_else(|_| panic!("{target}: the page never ends"))
                .unwrap()
                .to_bytes();
            reply.body = String::from_utf8_lossy(&bytes).into_owned();
        }
        reply
    }

    async fn get(&self, target: &str, cookie: &str) -> Reply {
        self.send(Method::GET, target, cookie, None).await
    }

    async fn post(&self, target: &str, cookie: &str, body: String) -> Reply {
        self.send(Method::POST, target, cookie, Some(body)).await
    }

    /// `target` as a path and query on this site, if it is one (links to other sites, to the
    /// assets and to other schemes are not).
    fn local(&self, page: &Url, target: &str) -> Option<String> {
        let mut url = page.join(target).ok()?;
        url.set_fragment(None);
        if url.origin() != self.base.origin() || url.path().starts_with("/assets/") {
            return None;
        }
        Some(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// The sign-in form's page: its pre-session cookie and its form.
    async fn sign_in_form(&self) -> (String, PostForm) {
        let page = self.get("/login", "").await;
        assert_eq!(page.status, StatusCode::OK, "GET /login");
        let cookie = page
            .cookie("agent_auth_form")
            .expect("GET /login sets the pre-session cookie");
        let form = (forms_of(self, "/login", &page.body).into_iter())
            .find(|form| form.action.starts_with("/login"))
            .expect("the sign-in form");
        (cookie, form)
    }

    /// Signs `user` in through the sign-in form: the session cookie.
    async fn sign_in(&self, user: &str, password: &str) -> String {
        let (cookie, mut form) = self.sign_in_form().await;
        form.set("user", user);
        form.set("password", password);
        let answer = self
            .post(&form.action, &cookie, form.body_with(form.token()))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "signing in as {user}");
        answer
            .cookie("agent_auth_session")
            .unwrap_or_else(|| panic!("no session for {user}"))
    }

    /// Every page reachable from `/` by same-site links, breadth-first, and their forms.
    async fn crawl(&self, cookie: &str) -> Crawl {
        let mut seen = HashSet::from(["/".to_owned()]);
        let mut queue = VecDeque::from(["/".to_owned()]);
        let mut crawl = Crawl {
            pages: Vec::new(),
            forms: Vec::new(),
        };
        let mut visited = 0;
        while let Some(target) = queue.pop_front() {
            if visited == MAX_PAGES {
                break;
            }
            let reply = self.get(&target, cookie).await;
            assert!(
                !reply.status.is_server_error(),
                "GET {target}: {}",
                reply.status
            );
            let next = (reply.status.is_redirection())
                .then(|| reply.headers.get(header::LOCATION))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let page_url = self.base.join(&target).unwrap();
            let mut links: Vec<String> = next.into_iter().collect();
            // A link's answer that is no page (a redirect, an error of the API) is not
            // checked as one.
            if reply.is_page() {
                links.extend(links_of(&reply.body));
                crawl.forms.extend(forms_of(self, &target, &reply.body));
                crawl.pages.push((target, reply.status, reply.headers));
            }
            visited += 1;
            for link in links {
                if let Some(local) = self.local(&page_url, &link) {
                    if seen.insert(local.clone()) {
                        queue.push_back(local);
                    }
                }
            }
        }
        crawl
    }
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// The targets of a page's links.
fn links_of(html: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    (document.select(&selector("a[href]")))
        .filter_map(|a| a.value().attr("href"))
        .map(str::to_owned)
        .collect()
}

/// The forms of the page `page` that post.
fn forms_of(site: &Site, page: &str, html: &str) -> Vec<PostForm> {
    let document = Html::parse_document(html);
    let page_url = site.base.join(page).unwrap();
    (document.select(&selector("form")))
        .filter(|form| {
            (form.value().attr("method")).is_some_and(|m| m.eq_ignore_ascii_case("post"))
        })
        .map(|form| {
            let action = form.value().attr("action").unwrap_or(page);
            PostForm {
                page: page.to_owned(),
                action: site
                    .local(&page_url, action)
                    .unwrap_or_else(|| panic!("{page}: a form posts elsewhere: {action}")),
                fields: fields_of(form),
            }
        })
        .collect()
}

/// What a browser sends of `form` when its first named submit button is pressed unchanged.
fn fields_of(form: ElementRef<'_>) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut pressed = false;
    for control in form.select(&selector(
        "input[name], select[name], textarea[name], button[name]",
    )) {
        let element = control.value();
        let name = element.attr("name").unwrap_or_default().to_owned();
        // A button without a type submits its form.
        let default = if element.name() == "button" {
            "submit"
        } else {
            "text"
        };
        let kind = element.attr("type").unwrap_or(default).to_ascii_lowercase();
        let value = match element.name() {
            "select" => {
                let options: Vec<_> = control.select(&selector("option")).collect();
                let chosen = (options.iter())
                    .find(|o| o.value().attr("selected").is_some())
                    .or(options.first());
                chosen.map(|o| {
                    o.value()
                        .attr("value")
                        .map_or_else(|| o.text().collect(), str::to_owned)
                })
            }
            "textarea" => Some(control.text().collect()),
            "button" | "input" if kind == "submit" => {
                let first = !pressed;
                pressed = true;
                first.then(|| element.attr("value").unwrap_or_default().to_owned())
            }
            "button" => None,
            _ if kind == "checkbox" || kind == "radio" => element
                .attr("checked")
                .map(|_| element.attr("value").unwrap_or("on").to_owned()),
            _ => Some(element.attr("value").unwrap_or_default().to_owned()),
        };
        if let Some(value) = value {
            fields.push((name, value));
        }
    }
    fields
}

/// Adds `user` with `password`, and the role `capabilities` (unrestricted: an admin) if given.
fn add_user(db: &str, user: &str, password: &str, capabilities: Option<&str>) {
    use assert_cmd::cargo::CommandCargoExt;
    let mut command = Command::cargo_bin("agent-auth").unwrap();
    command
        .env("AGENT_AUTH_DATABASE_URL", db)
        .args(["user", "add", user, "--password-stdin"]);
    if let Some(capabilities) = capabilities {
        command.args(["--capabilities", capabilities]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "user add {user}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every page the crawl saw says it may not be framed (`X-Frame-Options` for old browsers,
/// `frame-ancestors` for the others), and allows no inline script or style.
fn assert_unframeable(pages: &[(String, StatusCode, HeaderMap)]) {
    let mut faults = Vec::new();
    for (path, status, headers) in pages {
        let read = |name| {
            (headers.get(name))
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .unwrap_or_default()
        };
        let csp = read(header::CONTENT_SECURITY_POLICY);
        if read(header::X_FRAME_OPTIONS) != "DENY" {
            faults.push(format!(
                "{path} ({status}): X-Frame-Options {:?}",
                read(header::X_FRAME_OPTIONS)
            ));
        }
        if !csp.contains("frame-ancestors 'none'") || csp.contains("unsafe-inline") {
            faults.push(format!(
                "{path} ({status}): Content-Security-Policy {csp:?}"
            ));
        }
    }
    assert!(
        faults.is_empty(),
        "pages that may be framed:\n{}",
        faults.join("\n")
    );
}

/// Crawls as `cookie`'s user, then posts every form found: without its token (403), with
/// `other`'s (403), and with its own (accepted), the destructive forms last and sign-out at
/// the very end. The forms found.
async fn attack(site: &Site, who: &str, cookie: &str, other: &str) -> Vec<PostForm> {
    let crawl = site.crawl(cookie).await;
    let pages: Vec<&str> = crawl.pages.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(pages.contains(&"/"), "{who}: {pages:?}");
    assert_unframeable(&crawl.pages);
    let own = support::session_form_token(cookie);
    let others = support::session_form_token(other);

    // One of each form: the same form on many pages (sign-out) is posted once.
    let mut kinds = HashSet::new();
    let mut forms: Vec<PostForm> = (crawl.forms.into_iter())
        .filter(|form| {
            let mut names: Vec<&str> = form.fields.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            kinds.insert(format!("{} {names:?}", form.action))
        })
        .collect();
    for form in &forms {
        assert_eq!(
            form.token(),
            Some(own.as_str()),
            "{who}: the form to {} on {} carries its session's token",
            form.action,
            form.page
        );
        let without = site.post(&form.action, cookie, form.body_with(None)).await;
        assert_eq!(
            without.status,
            StatusCode::FORBIDDEN,
            "{who}: the form to {} on {} posted without its token",
            form.action,
            form.page
        );
        let forged = site
            .post(&form.action, cookie, form.body_with(Some(&others)))
            .await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{who}: the form to {} on {} posted with another session's token",
            form.action,
            form.page
        );
    }
    forms.sort_by_key(|form| (form.action.starts_with("/logout"), form.destructive()));
    for form in &forms {
        let posted = site
            .post(&form.action, cookie, form.body_with(Some(&own)))
            .await;
        assert!(
            posted.status != StatusCode::FORBIDDEN && !posted.status.is_server_error(),
            "{who}: the form to {} on {} refused with its own token: {} {}",
            form.action,
            form.page,
            posted.status,
            posted.body
        );
    }
    forms
}

/// The sign-in form before sign-in: its token is bound to the pre-session cookie, so it is
/// refused without it, with another pre-session's and with a session's; the same-origin rule
/// still refuses it from another site.
async fn attack_sign_in(site: &Site, password: &str, session: &str) {
    let (cookie, form) = site.sign_in_form().await;
    let (_, other) = site.sign_in_form().await;
    let mut guess = form.clone();
    guess.set("user", "demo");
    guess.set("password", "wrong");
    let session_token = support::session_form_token(session);
    for token in [None, other.token(), Some(session_token.as_str())] {
        let answer = site
            .post(&form.action, &cookie, guess.body_with(token))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "the sign-in form with {token:?}"
        );
        assert!(answer.cookie("agent_auth_session").is_none());
    }
    let wrong = site
        .post(&form.action, &cookie, guess.body_with(form.token()))
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNAUTHORIZED,
        "its own token: checked"
    );

    let mut right = form.clone();
    right.set("user", "demo");
    right.set("password", password);
    let url = site.base.join(&form.action).unwrap();
    let request = http::Request::post(url.as_str())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://evil.localhost")
        .header(header::COOKIE, &cookie)
        .body(Full::new(Bytes::from(right.body_with(right.token()))))
        .unwrap();
    let forged = site.client.request(request).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "from another site");
    assert!(forged.headers().get(header::SET_COOKIE).is_none());
}

/// Every form of every page, for the demo user, an admin and a plain user: 403 without its
/// token or with another session's, accepted with its own; every page refuses to be framed.
#[test]
fn every_form_needs_its_own_token_and_no_page_may_be_framed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("attack.db").display());
    support::cli(&db, &["migrate"]);
    add_user(&db, "ada", "ada-password", None);
    add_user(&db, "eve", "eve-password", Some("posts:read"));
    let (child, base, password, log) = serve_demo(&db);
    let serve = crate::browser::Killed(child);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        tokio::spawn(async move {
            let site = Site::new(&base);
            let demo = site.sign_in("demo", &password).await;
            let eve = site.sign_in("eve", "eve-password").await;
            let ada = site.sign_in("ada", "ada-password").await;
            attack_sign_in(&site, &password, &demo).await;

            let anonymous = ["/login", "/logout"];
            let mut pages = Vec::new();
            for path in anonymous {
                let reply = site.get(path, "").await;
                pages.push((path.to_owned(), reply.status, reply.headers));
            }
            assert_unframeable(&pages);

            let found = attack(&site, "demo", &demo, &eve).await;
            assert!(
                found.len() >= MIN_FORMS,
                "the crawl found {} forms: {found:?}",
                found.len()
            );
            assert!(
                found.iter().any(|form| form.action == "/logout"),
                "no sign-out form: {found:?}"
            );
            for action in [
                "/agents/demo-bot/tokens",
                "/agents/demo-bot/policy",
                "/account/password",
            ] {
                assert!(
                    found.iter().any(|form| form.action == action),
                    "no {action} form: {found:?}"
                );
            }
            attack(&site, "eve (plain user)", &eve, &ada).await;
            let admin = attack(&site, "ada (admin)", &ada, &eve).await;
            assert!(
                admin.iter().any(|form| form.action.starts_with("/users")),
                "no users form for an admin: {admin:?}"
            );
        })
        .await
    });
    drop(serve);
    if let Err(failure) = outcome {
        let log = log.join().unwrap_or_default();
        eprintln!(
            "--- server log (tail) ---\n{}",
            log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
        );
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// A page of another origin: it frames `/` and `/login` of `base`, and a page of its own
/// with a form (that the frame check can see a form at all). Its port.
fn framing_site(base: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let framer = format!(
        "<!doctype html><title>another site</title>\
         <iframe id=home src=\"{base}/\"></iframe>\
         <iframe id=login src=\"{base}/login\"></iframe>\
         <iframe id=own src=\"/own\"></iframe>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let framer = framer.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let body = if line.starts_with("GET /own ") {
                    "<!doctype html><form method=post action=/own><input name=x></form>".to_owned()
                } else {
                    framer
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// What the frame `id` of the current page shows: its forms, and whether it has this
/// server's layout (its brand link).
async fn framed(browser: &Client, id: &str) -> (usize, bool) {
    let frame = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Id(id))
        .await
        .unwrap();
    frame.enter_frame().await.unwrap();
    let forms = browser.find_all(Locator::Css("form")).await.unwrap().len();
    let layout = !browser
        .find_all(Locator::Css("a.brand"))
        .await
        .unwrap()
        .is_empty();
    browser.enter_parent_frame().await.unwrap();
    (forms, layout)
}

async fn framing_scenario(browser: Client, base: String, password: String) {
    // Signed in: framed, the home page would show the sign-out form (the cookie is sent: the
    // other port is the same site).
    browser_sign_in(&browser, &base, "demo", &password).await;
    let port = framing_site(&base);
    // `goto` returns once the page has loaded, frames and all.
    browser
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!(
        framed(&browser, "own").await,
        (1, false),
        "a frame shows its form"
    );
    for id in ["home", "login"] {
        assert_eq!(
            framed(&browser, id).await,
            (0, false),
            "the framed {id} page is shown"
        );
    }
}

/// In a real browser, another origin's page that frames `/` and `/login` shows nothing of them.
#[test]
fn chromium_shows_nothing_of_a_framed_page() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("framed.db").display());
    in_chromium(&driver, &db, framing_scenario);
}
