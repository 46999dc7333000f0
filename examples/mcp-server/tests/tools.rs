//! The real rmcp service behind the layers, one edge case per test: what each token may call,
//! through either transport, and what reaches a tool.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;
use tower_agent_auth::approval::{ApprovalBounds, ApprovalId};
use tower_agent_auth::mcp::APPROVAL_REQUIRED;
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::store::Managed;

const LIST_ONLY: &[&str] = &["mcp:connect", "mcp:tools:list_posts"];

fn payment() -> serde_json::Value {
    json!({"amount": 50, "currency": "EUR", "to": "ACME"})
}

fn post() -> serde_json::Value {
    json!({"title": "Hello", "body": "world"})
}

#[tokio::test]
async fn a_forged_mcp_name_never_reaches_the_tool_the_body_calls() {
    let server = Server::new();
    let token = server
        .token("reader", AgentType::Autonomous, LIST_ONLY)
        .await;
    for (tool, arguments) in [("send_payment", payment()), ("publishPost", post())] {
        // The headers claim a call the token may make; the body makes another.
        let response = server
            .stateless(
                &token,
                "tools/call",
                Some("list_posts"),
                call(1, tool, arguments),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{tool}");
        assert_eq!(answer(response).await["error"]["code"], -32020, "{tool}");
    }
    assert_eq!(server.blog.calls(), 0);
}

#[tokio::test]
async fn a_forbidden_tool_is_a_step_up_in_the_2026_07_28_transport() {
    let server = Server::new();
    let token = server
        .token("reader", AgentType::Autonomous, LIST_ONLY)
        .await;
    let response = server
        .stateless(
            &token,
            "tools/call",
            Some("publishPost"),
            call(1, "publishPost", post()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer realm="api", resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="mcp:connect mcp:tools:list_posts mcp:tools:publish.post""#
        )
    );
    assert_eq!(server.blog.calls(), 0);
}

#[tokio::test]
async fn a_forbidden_tool_is_a_step_up_in_a_2025_11_25_session() {
    let server = Server::new();
    let token = server
        .token("reader", AgentType::Autonomous, LIST_ONLY)
        .await;
    let session = server.session(&token).await;
    let response = server
        .legacy(&token, &session, call(1, "send_payment", payment()))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(
            r#"error="insufficient_scope", scope="mcp:connect mcp:tools:list_posts payments:send""#
        ),
        "{challenge}"
    );
    assert_eq!(server.blog.calls(), 0);

    // The session goes on: what the token may call, it calls.
    let response = server
        .legacy(&token, &session, call(2, "list_posts", json!({})))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        text(&answer(response).await),
        "0 posts, read by alice via reader"
    );
    assert_eq!(server.blog.calls(), 1);
}

#[tokio::test]
async fn a_permitted_call_reaches_the_tool_with_the_caller() {
    let server = Server::new();
    let token = server
        .token(
            "writer",
            AgentType::Autonomous,
            &["mcp:connect", "mcp:tools:*"],
        )
        .await;
    let response = server
        .stateless(
            &token,
            "tools/call",
            Some("publishPost"),
            call(1, "publishPost", post()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        text(&answer(response).await),
        r#"published "Hello" (5 bytes) as alice via writer"#
    );
    let response = server
        .stateless(
            &token,
            "tools/call",
            Some("list_posts"),
            call(2, "list_posts", json!({})),
        )
        .await;
    assert_eq!(
        text(&answer(response).await),
        "1 posts, read by alice via writer\n- Hello (by alice via writer)"
    );
    assert_eq!(server.blog.calls(), 2);
}

#[tokio::test]
async fn tools_list_shows_only_the_tools_the_caller_may_call() {
    let server = Server::new();
    let token = server
        .token(
            "writer",
            AgentType::Autonomous,
            &["mcp:connect", "mcp:tools:*"],
        )
        .await;
    let response = server.stateless(&token, "tools/list", None, list(1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        names(&answer(response).await),
        ["list_posts", "publishPost"]
    );

    // The same through a session, whose answers are event streams.
    let token = server
        .token("reader", AgentType::Autonomous, LIST_ONLY)
        .await;
    let session = server.session(&token).await;
    let response = server.legacy(&token, &session, list(1)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(names(&answer(response).await), ["list_posts"]);

    // And a token that may call anything sees every tool.
    let token = server
        .token(
            "payer",
            AgentType::Autonomous,
            &["mcp:connect", "mcp:tools:*", "payments:send"],
        )
        .await;
    let response = server.stateless(&token, "tools/list", None, list(1)).await;
    assert_eq!(
        names(&answer(response).await),
        ["list_posts", "publishPost", "send_payment"]
    );
}

#[tokio::test]
async fn a_supervised_agents_payment_waits_for_a_persons_approval() {
    let server = Server::new();
    let capabilities = ["mcp:connect", "mcp:tools:*", "payments:send"];
    let token = server
        .token("pay-bot", AgentType::Supervised, &capabilities)
        .await;
    let pay = || {
        server.stateless(
            &token,
            "tools/call",
            Some("send_payment"),
            call(7, "send_payment", payment()),
        )
    };
    let held = answer(pay().await).await;
    assert_eq!(held["id"], 7);
    assert_eq!(held["error"]["code"], APPROVAL_REQUIRED, "{held}");
    let id = held["error"]["data"]["approval_id"].as_str().unwrap();
    assert_eq!(server.blog.calls(), 0);

    // Asking again before anyone decided is still a wait, for the same approval.
    let again = answer(pay().await).await;
    assert_eq!(again["error"]["data"]["approval_id"], id);

    Managed::new(&server.store, "alice")
        .approve(&ApprovalId::new(id), ApprovalBounds::default())
        .await
        .unwrap();
    // The approval is of these arguments: other ones wait for another.
    let other = call(
        8,
        "send_payment",
        json!({"amount": 5000, "currency": "EUR", "to": "ACME"}),
    );
    let response = server
        .stateless(&token, "tools/call", Some("send_payment"), other)
        .await;
    let other = answer(response).await;
    assert_eq!(other["error"]["code"], APPROVAL_REQUIRED);
    assert_ne!(other["error"]["data"]["approval_id"], id);

    let paid = answer(pay().await).await;
    assert_eq!(text(&paid), "paid 50 EUR to ACME as alice via pay-bot");
    assert_eq!(server.blog.calls(), 1);

    // Used once: the next payment waits again.
    let held = answer(pay().await).await;
    assert_eq!(held["error"]["code"], APPROVAL_REQUIRED);
    assert_eq!(server.blog.calls(), 1);
}

#[tokio::test]
async fn an_autonomous_agent_pays_without_waiting() {
    let server = Server::new();
    let capabilities = ["mcp:connect", "mcp:tools:*", "payments:send"];
    let token = server
        .token("payer", AgentType::Autonomous, &capabilities)
        .await;
    let response = server
        .stateless(
            &token,
            "tools/call",
            Some("send_payment"),
            call(1, "send_payment", payment()),
        )
        .await;
    assert_eq!(
        text(&answer(response).await),
        "paid 50 EUR to ACME as alice via payer"
    );
}

#[tokio::test]
async fn no_token_is_sent_to_the_metadata_and_the_baseline() {
    let server = Server::new();
    let request = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .body(Body::from(list(1).to_string()))
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp""#
        )),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="mcp:connect mcp:tools:list_posts""#),
        "{challenge}"
    );

    // The metadata names the resource, its authorization server and the baseline.
    let request = Request::get("/.well-known/oauth-protected-resource/mcp")
        .body(Body::empty())
        .unwrap();
    let document = answer(server.send(request).await).await;
    assert_eq!(document["resource"], MCP);
    assert_eq!(document["authorization_servers"], json!([BASE]));
    assert_eq!(
        document["scopes_supported"],
        json!(["mcp:connect", "mcp:tools:list_posts"])
    );
}

#[tokio::test]
async fn a_token_for_no_resource_is_refused() {
    use tower_agent_auth::store::{NewAgent, NewToken};
    let server = Server::new();
    let agent = server
        .store
        .create_agent(NewAgent::new("cli", "alice"))
        .await
        .unwrap();
    // Minted as the CLI does: usable anywhere but where an audience is required.
    let issued = server
        .store
        .create_token(&agent.id, NewToken::new("cli"))
        .await
        .unwrap();
    let response = server
        .stateless(issued.token.expose_secret(), "tools/list", None, list(1))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.blog.calls(), 0);
}
