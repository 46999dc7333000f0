//! The MCP layer with a bare handler behind it: a handler that compares nothing, so every
//! refusal here is the layer's own. One edge case per test. (The real rmcp service behind the
//! layer is tested in `examples/mcp-server`.)
#![cfg(feature = "mcp")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::approval::{ApprovalBounds, Supervision};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::mcp::{APPROVAL_REQUIRED, McpLayer, ResponseBody};
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::store::{
    Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord,
};
use tower_agent_auth::token::TokenFormat;

const MCP: &str = "https://tools.example/mcp";
const METADATA: &str = "https://tools.example/.well-known/oauth-protected-resource/mcp";

type App =
    BoxCloneSyncService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// What reached the handler: each body, and whether it carried `Authorization`.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, bool)>>>);

impl Seen {
    fn bodies(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }
}

struct Setup {
    app: App,
    token: String,
    store: MemoryStore,
    seen: Seen,
}

fn handler(
    seen: Seen,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(move |request: Request<Full<Bytes>>| {
        let seen = seen.clone();
        async move {
            let authorization = request.headers().contains_key("authorization");
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8(body.to_vec()).unwrap();
            let list = text.contains("tools/list");
            let starts = text.contains("\"initialize\"");
            seen.0.lock().unwrap().push((text, authorization));
            let answer = if list {
                r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"getWeather"},{"name":"getweather"},{"name":"send_payment"}]}}"#
            } else {
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#
            };
            let mut response = Response::new(Full::new(Bytes::from_static(answer.as_bytes())));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            if starts {
                // A server that starts a session: the same id each time, as an attacker
                // who learned it would send it.
                response
                    .headers_mut()
                    .insert("mcp-session-id", "session-1".parse().unwrap());
            }
            Ok(response)
        }
    })
}

async fn setup_with(
    capabilities: &[&str],
    agent_type: AgentType,
    audience: Option<&str>,
    mcp: impl FnOnce(McpLayer, MemoryStore) -> McpLayer,
) -> Setup {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let agent = store
        .create_agent(NewAgent::new("helper", "alice").with_type(agent_type))
        .await
        .unwrap();
    let mut new =
        NewToken::new("mcp").with_capabilities(CapabilitySet::parse(capabilities).unwrap());
    if let Some(audience) = audience {
        new = new.resource(audience);
    }
    let token = store.create_token(&agent.id, new).await.unwrap();
    let seen = Seen::default();
    let layer = mcp(
        McpLayer::new().tool("send_payment", "payments:send"),
        store.clone(),
    );
    let app = ServiceBuilder::new()
        .layer(
            AgentAuthLayer::new(store.clone())
                .resource(MCP)
                .require_audience()
                .resource_metadata(METADATA)
                .unwrap(),
        )
        .layer(layer)
        .service(handler(seen.clone()));
    Setup {
        app: BoxCloneSyncService::new(app),
        token: token.token.expose_secret().to_owned(),
        store,
        seen,
    }
}

async fn setup(capabilities: &[&str]) -> Setup {
    setup_with(capabilities, AgentType::default(), Some(MCP), |layer, _| {
        layer
    })
    .await
}

fn call_body(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

fn post(token: &str) -> http::request::Builder {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
}

async fn send(app: &App, request: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// A body-only request (protocol 2025-11-25 and earlier).
async fn body_only(setup: &Setup, body: &str) -> (StatusCode, http::HeaderMap, String) {
    let request = post(&setup.token)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&setup.app, request).await
}

/// A 2026-07-28 request: `Mcp-Method` and `Mcp-Name` headers, and the body.
async fn with_headers(
    setup: &Setup,
    method: &str,
    name: &str,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let request = post(&setup.token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&setup.app, request).await
}

fn challenge(headers: &http::HeaderMap) -> &str {
    headers["www-authenticate"].to_str().unwrap()
}

#[tokio::test]
async fn a_permitted_call_reaches_the_server_without_the_token() {
    let s = setup(&["mcp:tools:get.weather"]).await;
    let (status, _, _) = body_only(&s, &call_body("getWeather")).await;
    assert_eq!(status, StatusCode::OK);
    let seen = s.seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].1, "the inbound Authorization header was passed on");
}

#[tokio::test]
async fn a_forbidden_call_in_the_body_alone_is_403_with_the_step_up_scope() {
    let s = setup(&["mcp:connect", "mcp:tools:get.weather"]).await;
    let (status, headers, _) = body_only(&s, &call_body("send_payment")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&headers),
        format!(
            r#"Bearer realm="api", resource_metadata="{METADATA}", error="insufficient_scope", scope="mcp:connect mcp:tools:get.weather payments:send""#
        )
    );
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn a_forbidden_call_named_in_the_headers_is_403() {
    let s = setup(&["mcp:tools:get.weather"]).await;
    let (status, headers, _) =
        with_headers(&s, "tools/call", "send_payment", &call_body("send_payment")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge(&headers).contains(r#"error="insufficient_scope""#));
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn a_forged_mcp_name_naming_a_permitted_tool_is_refused() {
    let s = setup(&["mcp:tools:get.weather"]).await;
    let (status, _, body) =
        with_headers(&s, "tools/call", "getWeather", &call_body("send_payment")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("-32020"), "{body}");
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn a_forged_mcp_method_is_refused() {
    let s = setup(&["mcp:connect"]).await;
    let (status, _, body) = with_headers(&s, "tools/list", "", &call_body("send_payment")).await;
    // `tools/list` is allowed by the baseline; the body asks for a tool call.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn a_tool_call_header_without_mcp_name_is_400() {
    let s = setup(&["mcp:tools:*"]).await;
    let request = post(&s.token)
        .header("mcp-method", "tools/call")
        .body(Full::new(Bytes::from(call_body("getWeather"))))
        .unwrap();
    let (status, _, body) = send(&s.app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("-32020"), "{body}");
}

#[tokio::test]
async fn names_that_differ_only_in_case_need_different_capabilities() {
    let s = setup(&["mcp:tools:getweather"]).await;
    assert_eq!(
        body_only(&s, &call_body("getweather")).await.0,
        StatusCode::OK
    );
    let (status, headers, _) = body_only(&s, &call_body("getWeather")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge(&headers).contains("mcp:tools:get.weather"));
}

#[tokio::test]
async fn a_name_that_cannot_be_mapped_is_refused_not_folded() {
    let s = setup(&["mcp:tools:*"]).await;
    let long = "A".repeat(100);
    let (status, _, body) = body_only(&s, &call_body(&long)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("cannot be mapped"), "{body}");
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let s = setup(&["mcp:tools:*"]).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":"{}"}}}}}}"#,
        "a".repeat(2 << 20)
    );
    assert_eq!(body_only(&s, &big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body of `.0` chunks of 64 KiB, its length not declared.
struct Chunks(usize);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b' ';
            64 * 1024
        ])))))
    }
}

#[tokio::test]
async fn an_oversized_body_without_a_length_is_413() {
    let s = setup(&["mcp:tools:*"]).await;
    let app = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(s.store.clone()))
        .layer(McpLayer::new())
        .service(handler(s.seen.clone()));
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {}", s.token))
        .body(Chunks(40))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(s.seen.bodies().is_empty());
}

#[tokio::test]
async fn a_deeply_nested_body_is_400() {
    let s = setup(&["mcp:tools:*"]).await;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{}{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(body_only(&s, &deep).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_parse_error() {
    let s = setup(&["mcp:tools:*"]).await;
    let (status, _, body) = body_only(&s, "tools/call send_payment").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("-32700"), "{body}");
}

#[tokio::test]
async fn a_batch_mixing_permitted_and_forbidden_calls_is_refused_whole() {
    let s = setup(&["mcp:connect", "mcp:tools:get.weather"]).await;
    let batch = format!(
        "[{},{}]",
        call_body("getWeather"),
        call_body("send_payment")
    );
    let (status, headers, _) = body_only(&s, &batch).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge(&headers).contains("payments:send"));
    assert!(s.seen.bodies().is_empty());
    let permitted = format!("[{},{}]", call_body("getWeather"), call_body("getWeather"));
    assert_eq!(body_only(&s, &permitted).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_baseline_guards_everything_else() {
    let s = setup(&["mcp:tools:get.weather"]).await;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    let (status, headers, _) = body_only(&s, init).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge(&headers).contains("mcp:connect"));
    let get = Request::get("/mcp")
        .header("authorization", format!("Bearer {}", s.token))
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&s.app, get).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_token_for_another_resource_is_401_with_the_metadata() {
    let s = setup_with(
        &["mcp:tools:*"],
        AgentType::default(),
        Some("https://other.example/mcp"),
        |l, _| l,
    )
    .await;
    let (status, headers, _) = body_only(&s, &call_body("getWeather")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge(&headers).contains(&format!(r#"resource_metadata="{METADATA}""#)));
}

#[tokio::test]
async fn a_token_without_audience_is_401_when_one_is_required() {
    let s = setup_with(&["mcp:tools:*"], AgentType::default(), None, |l, _| l).await;
    let (status, headers, _) = body_only(&s, &call_body("getWeather")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge(&headers).contains("resource_metadata="));
}

#[tokio::test]
async fn a_base64_mcp_name_is_decoded_before_it_is_compared() {
    let s = setup(&["mcp:tools:caf._c3._a9"]).await;
    // "café", Base64 of its UTF-8.
    let (status, _, body) =
        with_headers(&s, "tools/call", "=?base64?Y2Fmw6k=?=", &call_body("café")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn tools_list_shows_only_callable_tools_when_asked() {
    let s = setup_with(
        &["mcp:connect", "mcp:tools:get.weather"],
        AgentType::default(),
        Some(MCP),
        |l, _| l.hide_uncallable_tools(),
    )
    .await;
    let (status, _, body) =
        body_only(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        value["result"]["tools"],
        serde_json::json!([{"name": "getWeather"}])
    );
}

#[tokio::test]
async fn a_supervised_agents_critical_call_waits_for_a_person() {
    let s = setup_with(
        &["mcp:connect", "payments:send"],
        AgentType::Supervised,
        Some(MCP),
        |layer, store| {
            layer.supervision(Supervision::new(
                store,
                CapabilitySet::parse(["payments:send"]).unwrap(),
            ))
        },
    )
    .await;
    let pay = |amount: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"send_payment","arguments":{{"amount":{amount}}}}}}}"#
        )
    };
    let (status, _, body) = body_only(&s, &pay(50)).await;
    assert_eq!(status, StatusCode::OK);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["id"], 3);
    assert_eq!(error["error"]["code"], APPROVAL_REQUIRED);
    let id = error["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(s.seen.bodies().is_empty());

    Managed::new(&s.store, "alice")
        .approve(
            &tower_agent_auth::approval::ApprovalId::new(id.as_str()),
            ApprovalBounds::default(),
        )
        .await
        .unwrap();
    // Other arguments are another approval.
    let (_, _, body) = body_only(&s, &pay(5000)).await;
    assert!(body.contains(&APPROVAL_REQUIRED.to_string()), "{body}");
    // The approved one passes, once.
    let (status, _, body) = body_only(&s, &pay(50)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("error"), "{body}");
    assert_eq!(s.seen.bodies().len(), 1);
}

/// A session is its starter's: another agent of the same person, with a valid token and the
/// session's id, gets `404` and cannot end it; the starter goes on, and ends it.
#[tokio::test]
async fn a_session_is_its_starters_alone() {
    let s = setup(&["mcp:connect"]).await;
    let other = s
        .store
        .create_agent(NewAgent::new("other", "alice"))
        .await
        .unwrap();
    let other = s
        .store
        .create_token(
            &other.id,
            NewToken::new("mcp")
                .with_capabilities(CapabilitySet::parse(["mcp:connect"]).unwrap())
                .resource(MCP),
        )
        .await
        .unwrap();
    let other = other.token.expose_secret().to_owned();
    let request = |token: &str, method: http::Method, session: Option<&str>, body: &str| {
        let mut builder = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if let Some(session) = session {
            builder = builder.header("mcp-session-id", session);
        }
        builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let (status, headers, _) =
        send(&s.app, request(&s.token, http::Method::POST, None, init)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["mcp-session-id"], "session-1");

    let theirs = request(&other, http::Method::POST, Some("session-1"), ping);
    assert_eq!(send(&s.app, theirs).await.0, StatusCode::NOT_FOUND);
    let end = request(&other, http::Method::DELETE, Some("session-1"), "");
    assert_eq!(send(&s.app, end).await.0, StatusCode::NOT_FOUND);
    let unknown = request(&s.token, http::Method::POST, Some("session-2"), ping);
    assert_eq!(send(&s.app, unknown).await.0, StatusCode::NOT_FOUND);

    let mine = request(&s.token, http::Method::POST, Some("session-1"), ping);
    assert_eq!(send(&s.app, mine).await.0, StatusCode::OK);
    let end = request(&s.token, http::Method::DELETE, Some("session-1"), "");
    assert_eq!(send(&s.app, end).await.0, StatusCode::OK);
    let after = request(&s.token, http::Method::POST, Some("session-1"), ping);
    assert_eq!(send(&s.app, after).await.0, StatusCode::NOT_FOUND);
    // Only the starter's requests reached the server: the first, the ping and the end.
    assert_eq!(s.seen.bodies().len(), 3);
}
