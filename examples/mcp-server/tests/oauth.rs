//! An MCP client's way in, as a client and a person go through it: register, send the person to
//! sign in and consent, exchange the code, call a tool; step up for another tool when refused.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use http_body_util::BodyExt;
use mcp_server::Accounts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_agent_auth::mcp::APPROVAL_REQUIRED;
use url::form_urlencoded;

const REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// An answer read whole.
struct Page {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

async fn visit(server: &Server, request: Request<Body>) -> Page {
    let response = server.send(request).await;
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let location = header(header::LOCATION);
    let cookie = header(header::SET_COOKIE).map(|c| c.split(';').next().unwrap().to_owned());
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Page {
        status,
        location,
        cookie,
        body,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

fn post_form(uri: &str, pairs: &[(&str, &str)], cookie: Option<&str>) -> Request<Body> {
    let mut request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(form(pairs))).unwrap()
}

/// The value of the query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of the hidden field `name` of a page, unescaped.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"<input type="hidden" name="{name}" value=""#);
    let value = html.split_once(&marker)?.1.split_once('"')?.0;
    Some(value.replace("&quot;", "\"").replace("&amp;", "&"))
}

/// The hidden fields and the ticked capabilities of the consent form, and `decision=allow`.
fn consent(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for (kind, name_is) in [("hidden", None), ("checkbox", Some("capability"))] {
        let marker = format!("<input type=\"{kind}\" name=\"");
        for rest in html.split(&marker).skip(1) {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest
                .split_once("value=\"")
                .unwrap()
                .1
                .split_once('"')
                .unwrap()
                .0;
            let name = name_is.unwrap_or(name);
            let decode = |s: &str| html_escape::decode_html_entities(s).into_owned();
            fields.push((decode(name), decode(value)));
        }
    }
    fields.push(("decision".into(), "allow".into()));
    fields
}

/// The authorization request of `client` for `scope` at `/mcp`, and its PKCE verifier.
fn authorization(client: &str, scope: &str) -> (String, String) {
    let mut verifier = [0u8; 32];
    getrandom::fill(&mut verifier).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(verifier);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = form(&[
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", MCP),
        ("scope", scope),
    ]);
    (format!("/oauth/authorize?{query}"), verifier)
}

/// The scope a `403 insufficient_scope` tells the client to ask for.
fn step_up(refused: &axum::http::Response<Body>) -> String {
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    let scope = challenge.split("scope=\"").nth(1).expect("a scope");
    scope.trim_end_matches('"').to_owned()
}

/// The person, signed in as `cookie`, allows what the client asks for `scope`: an access
/// token for `/mcp`.
async fn authorize(server: &Server, client: &str, cookie: &str, scope: &str) -> String {
    let (url, verifier) = authorization(client, scope);
    let page = visit(server, get(&url, Some(cookie))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let fields = consent(&page.body);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (&**n, &**v)).collect();
    let allowed = visit(server, post_form("/oauth/authorize", &fields, Some(cookie))).await;
    let back = allowed.location.expect("sent back to the client");
    assert!(back.starts_with(REDIRECT), "{back}");
    let code = param(&back, "code").expect("a code");

    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
        ("resource", MCP),
    ];
    let token = visit(server, post_form("/oauth/token", &exchange, None)).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.body);
    let token: Value = serde_json::from_str(&token.body).unwrap();
    assert_eq!(token["scope"], scope);
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_gets_the_baseline_steps_up_and_waits_for_approval_to_pay() {
    let accounts = Accounts::new();
    accounts
        .add("alice", role(), "correct horse")
        .await
        .unwrap();
    let server = Server::with(accounts);

    // The client registers itself.
    let registration = json!({
        "client_name": "Test MCP client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
    });
    let request = Request::post("/oauth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(registration.to_string()))
        .unwrap();
    let registered = visit(&server, request).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    let client: Value = serde_json::from_str(&registered.body).unwrap();
    let client = client["client_id"].as_str().unwrap();

    // The person is not signed in: sent to sign in, then back to the authorization request.
    let (url, _) = authorization(client, "mcp:connect");
    let page = visit(&server, get(&url, None)).await;
    assert_eq!(page.status, StatusCode::FOUND);
    let sign_in_page = page.location.unwrap();
    let back = param(&sign_in_page, "return").unwrap();
    // The sign-in form: its token, bound to the pre-session cookie the page sets.
    let form_page = visit(&server, get(&sign_in_page, None)).await;
    let pre_session = form_page.cookie.expect("a pre-session cookie");
    let token = hidden_field(&form_page.body, "csrf").expect("the form's token");
    let sign_in = [
        ("user", "alice"),
        ("password", "correct horse"),
        ("return", &back),
        ("csrf", &token),
    ];
    let signed_in = visit(&server, post_form("/login", &sign_in, Some(&pre_session))).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location.as_deref(), Some(back.as_str()));
    let cookie = signed_in.cookie.expect("a session");

    // The baseline: list the posts, not publish.
    let token = authorize(&server, client, &cookie, "mcp:connect mcp:tools:list_posts").await;
    let listed = server
        .stateless(
            &token,
            "tools/call",
            Some("list_posts"),
            call(1, "list_posts", json!({})),
        )
        .await;
    let listed = answer(listed).await;
    assert!(text(&listed).starts_with("0 posts, read by alice via test-mcp-client-"));
    let publish = call(2, "publishPost", json!({"title": "Hi", "body": "there"}));
    let refused = server
        .stateless(&token, "tools/call", Some("publishPost"), publish.clone())
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let scope = step_up(&refused);
    assert_eq!(
        scope,
        "mcp:connect mcp:tools:list_posts mcp:tools:publish.post"
    );

    // The client asks for the scope the challenge named; the person allows it.
    let token = authorize(&server, client, &cookie, &scope).await;
    let published = server
        .stateless(&token, "tools/call", Some("publishPost"), publish)
        .await;
    assert_eq!(published.status(), StatusCode::OK);
    assert!(
        text(&answer(published).await)
            .starts_with(r#"published "Hi" (5 bytes) as alice via test-mcp-client-"#)
    );

    // A payment: a step up too, and then, the client's agent being supervised, a wait for
    // alice's approval of this payment.
    let pay = call(
        3,
        "send_payment",
        json!({"amount": 50, "currency": "EUR", "to": "ACME"}),
    );
    let refused = server
        .stateless(&token, "tools/call", Some("send_payment"), pay.clone())
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let token = authorize(&server, client, &cookie, &step_up(&refused)).await;
    let held = server
        .stateless(&token, "tools/call", Some("send_payment"), pay.clone())
        .await;
    let held = answer(held).await;
    assert_eq!(held["error"]["code"], APPROVAL_REQUIRED, "{held}");
    let approval = held["error"]["data"]["approval_id"].as_str().unwrap();
    assert_eq!(server.blog.calls(), 2);

    // alice approves it with her session cookie, as the printed curl lines do.
    let approve = Request::post(format!("/api/approvals/{approval}/approve"))
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let approved = visit(&server, approve).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let paid = server
        .stateless(&token, "tools/call", Some("send_payment"), pay)
        .await;
    let paid = answer(paid).await;
    assert!(text(&paid).starts_with("paid 50 EUR to ACME as alice via test-mcp-client-"));
    assert_eq!(server.blog.calls(), 3);
}
