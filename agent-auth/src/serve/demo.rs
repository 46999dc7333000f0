//! The demo API `serve` answers beside management: who am I, two routes that need
//! capabilities, a payment a supervised agent must have approved; and `--demo`'s seed (a user,
//! an agent, a token printed with ready curl lines).

use std::error::Error;
use std::net::SocketAddr;

use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_agent_auth::approval::{CriticalAction, Supervision};
use tower_agent_auth::axum::Require;
use tower_agent_auth::ceiling::CapabilitySet;
use tower_agent_auth::store::{Backend, Store};
use tower_agent_auth::{Principal, capability};

use crate::database::Accounts;

capability!(
    /// May read the demo posts.
    PostsRead = "posts:read"
);

capability!(
    /// May write demo posts.
    PostsWrite = "posts:write"
);

/// A demo payment: what `POST /demo/payments` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Payment {
    amount: u64,
    currency: String,
    to: String,
}

/// `POST /demo/payments`: needs `payments:send`, and a supervised agent's payment waits for a
/// person's approval of exactly this payment (amount, currency, payee).
async fn pay<B: Backend>(
    axum::extract::State(supervision): axum::extract::State<Supervision<Store<B>>>,
    principal: Principal,
    uri: http::Uri,
    payment: Result<Json<Payment>, axum::extract::rejection::JsonRejection>,
) -> Result<(http::StatusCode, Json<Value>), Response> {
    use axum::response::IntoResponse;
    let invalid = |message: &str| {
        (
            http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "invalid", "message": message})),
        )
            .into_response()
    };
    let Json(mut payment) = payment
        .map_err(|_| invalid("body: {\"amount\": N, \"currency\": \"EUR\", \"to\": \"…\"}"))?;
    if payment.amount == 0
        || payment.currency.len() != 3
        || !payment.currency.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(invalid("amount: more than 0; currency: 3 capital letters"));
    }
    payment.to = payee(&payment.to).map_err(|message| invalid(&message))?;
    let action = CriticalAction::new("payments:send", &http::Method::POST, uri.path())
        .details(json!({
            "type": "payment",
            "amount": payment.amount,
            "currency": payment.currency,
            "to": payment.to,
        }))
        .message(format!(
            "Pay {} {} to {}",
            payment.amount, payment.currency, payment.to
        ));
    supervision
        .check(&principal, &action)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((
        http::StatusCode::CREATED,
        Json(json!({
            "paid": {"amount": payment.amount, "currency": payment.currency, "to": payment.to},
            "by": principal.user_id().as_str(),
            "agent": principal.agent_ref().map(|a| a.slug()),
        })),
    ))
}

/// The demo API: who am I, two routes that need capabilities, and a critical one.
pub(super) fn demo<B: Backend>(supervision: Supervision<Store<B>>) -> Router {
    async fn me(principal: Principal) -> Json<Value> {
        Json(json!({
            "user": principal.user_id().as_str(),
            "agent": principal.agent_ref().map(|a| a.slug()),
            "auth_source": principal.auth_source().as_str(),
            "token_id": principal.token_id().map(|t| t.as_str()),
            "delegation_depth": principal.delegation_depth(),
            "delegation_chain": principal
                .delegation_chain()
                .iter()
                .map(|link| link.agent().slug())
                .collect::<Vec<_>>(),
            "task": principal.task().map(|task| json!({
                "task_id": task.task_id.as_deref(),
                "intent": task.intent.as_deref(),
                "environment": task.environment.as_deref(),
                "orchestrator": task.orchestrator.as_ref().map(|a| a.as_str()),
                "delegated_by": task.delegated_by.as_ref().map(|u| u.as_str()),
            })),
            "may_read_posts": principal.can("posts:read"),
            "may_write_posts": principal.can("posts:write"),
        }))
    }
    async fn list(Require(principal, _): Require<PostsRead>) -> Json<Value> {
        Json(json!({"posts": [], "read_by": principal.user_id().as_str()}))
    }
    async fn create(Require(principal, _): Require<PostsWrite>) -> (http::StatusCode, Json<Value>) {
        (
            http::StatusCode::CREATED,
            Json(json!({"created_by": principal.user_id().as_str(),
                        "agent": principal.agent_ref().map(|a| a.slug())})),
        )
    }
    Router::new()
        .route("/demo/me", get(me))
        // The cheapest route behind the layer: what the layer costs, measured against
        // `/healthz` (the same answer without it).
        .route("/demo/ping", get(|_: Principal| async { "ok\n" }))
        .route("/demo/posts", get(list).post(create))
        .route(
            "/demo/payments",
            axum::routing::post(pay::<B>).with_state(supervision),
        )
}

/// The longest payee, in bytes: "Pay {u64} {XYZ} to " takes at most 32 of a binding
/// message's 200.
const MAX_PAYEE: usize = 160;

/// The payee, as the person will read it ("Pay 50 EUR to ACME"): surrounding whitespace
/// trimmed, and what is left must read as it is; refused in the agent's own terms (`to: …`),
/// not as the binding message's rules, which the agent did not write.
fn payee(to: &str) -> Result<String, String> {
    let to = to.trim();
    if to.is_empty() || to.chars().count() > 64 || to.len() > MAX_PAYEE {
        return Err(format!(
            "to: 1-64 characters, at most {MAX_PAYEE} bytes of UTF-8"
        ));
    }
    tower_agent_auth::approval::check_readable(to).map_err(|why| format!("to: {why}"))?;
    Ok(to.to_owned())
}

/// What the demo's payments need, critical whatever else is named.
const ALWAYS_CRITICAL: &str = "payments:send";

/// The critical capabilities: `payments:send` and those given (`--critical-capability`).
pub(super) fn critical_set(given: &[String]) -> Result<CapabilitySet, String> {
    let mut names = vec![ALWAYS_CRITICAL.to_owned()];
    names.extend(given.iter().cloned());
    CapabilitySet::parse(&names).map_err(|e| format!("--critical-capability: {e}"))
}

/// The demo: user `demo` (password printed on first run only) and agent `demo-bot`, and a fresh
/// one-hour token for it on every run.
pub(super) async fn demo_seed<B: Backend>(
    store: &Store<B>,
    accounts: &Accounts,
    address: SocketAddr,
) -> Result<(), Box<dyn Error>> {
    use tower_agent_auth::ceiling::Policy;
    use tower_agent_auth::store::{NewAgent, NewToken};
    let first_run = !accounts.list().await?.iter().any(|a| a.id == "demo");
    if first_run {
        let mut secret = [0u8; 12];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        let password = hex::encode(secret);
        let hash = tower_agent_auth::server::hash_password_off_runtime(password.clone())
            .await
            .map_err(|e| e.to_string())?;
        accounts
            .add(
                "demo",
                // Posts, payments, and the demo MCP server's tools.
                Some(&CapabilitySet::parse([
                    "posts:*",
                    "payments:send",
                    "mcp:*",
                ])?),
                Some(hash),
            )
            .await?;
        println!(
            "demo user: demo / {password}  (shown this once; sign in at http://{address}/login)"
        );
    }
    let agent = match store.agent_by_slug("demo-bot").await? {
        Some(agent) => agent,
        None => {
            store
                .create_agent(
                    NewAgent::new("demo-bot", "demo")
                        .with_policy(Policy::allow(CapabilitySet::parse(["posts:read"])?)),
                )
                .await?
        }
    };
    let issued = store
        .create_token(
            &agent.id,
            NewToken::new("demo").expires_in(std::time::Duration::from_secs(3600)),
        )
        .await?;
    let token = issued.token.expose_secret();
    println!("demo token for demo-bot (valid 1 h; may read posts, not write):");
    println!("  {token}");
    println!("  curl -H 'Authorization: Bearer {token}' http://{address}/demo/me");
    println!(
        "  curl -H 'Authorization: Bearer {token}' http://{address}/demo/posts            # 200"
    );
    println!(
        "  curl -X POST -H 'Authorization: Bearer {token}' http://{address}/demo/posts    # 403"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payee_reads_as_it_is_and_is_refused_in_the_agents_terms() {
        assert_eq!(payee("  ACME\u{00a0}").unwrap(), "ACME", "trimmed");
        assert_eq!(payee("ACME Corp").unwrap(), "ACME Corp");
        let padded = format!("ACME{}x", " ".repeat(35));
        for bad in ["ACME\u{2800}", "AC\u{3000}ME", padded.as_str(), "", "  "] {
            let refused = payee(bad).unwrap_err();
            assert!(refused.starts_with("to: "), "{bad:?}: {refused}");
        }
        // 64 characters of 4 bytes each: too long for the message, said as a payee's limit.
        let wide = "\u{1F600}".repeat(64);
        let refused = payee(&wide).unwrap_err();
        assert!(refused.starts_with("to: 1-64 characters"), "{refused}");
        assert!(!refused.contains("binding message"), "{refused}");
    }

    #[test]
    fn payments_stay_critical_whatever_else_is_named() {
        let default = critical_set(&[]).unwrap();
        assert!(default.matches("payments:send"));
        let more = critical_set(&["posts:publish".to_owned()]).unwrap();
        assert!(more.matches("payments:send"), "given values add to it");
        assert!(more.matches("posts:publish"));
        assert!(critical_set(&["not a capability".to_owned()]).is_err());
    }
}
