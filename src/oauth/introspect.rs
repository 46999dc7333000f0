//! Token introspection (RFC 7662), `POST /oauth/introspect`: for a client allowed to introspect
//! (a resource server), what an access or refresh token stands for now, with the agent
//! extensions. It reads through [`Store::inspect`](crate::store::Store::inspect): every check
//! a request would get, and never a use spent. With the layer's
//! [verdict cache](super::AuthorizationServer::verdict_cache) it reads that cache first: a
//! refused token costs no read of the store.
//!
//! An inactive token, or one bound to a resource this server does not issue for, or to another
//! resource than the one the request names (`resource`, the caller's own), is
//! `{"active":false}` and nothing more.

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::State;
use ::axum::response::Response;
use ::axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::authority::Authority;
use super::client::ClientAuth;
use super::client_auth::{authenticate, presented};
use super::error::{OAuthError, no_store_json};
use super::params::Params;
use super::routes::{INTROSPECT, cors};
use super::scope;
use crate::principal::DelegationLink;
use crate::resolver::TokenLookup;
use crate::store::Backend;
use crate::store::resolve::Inspection;
use crate::token::TokenHash;

/// `{"active": false}`.
fn inactive() -> Value {
    json!({"active": false})
}

/// RFC 8693's `act`: the agent acting, and inside it whoever it acts under, the least recent
/// (nearest the person) the most deeply nested.
fn act(agent: &str, chain: &[DelegationLink]) -> Value {
    let mut act = Value::Null;
    for link in chain {
        let mut next = json!({"sub": link.agent().id().as_str()});
        if !act.is_null() {
            next["act"] = act;
        }
        act = next;
    }
    let mut outer = json!({"sub": agent});
    if !act.is_null() {
        outer["act"] = act;
    }
    outer
}

/// Drops the members that are `null`: an absent claim is left out (RFC 7662 §2.2).
fn without_nulls(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    value
}

/// An access token's answer.
fn access_answer(inspection: &Inspection, issuer: &str) -> Value {
    let principal = &inspection.principal;
    let info = &inspection.token;
    let agent = principal.agent_ref();
    let agent_id = agent.map(|a| a.id().as_str()).unwrap_or_default();
    let chain = principal.delegation_chain();
    without_nulls(json!({
        "active": true,
        "scope": info.capabilities.as_ref().map(scope::to_scope),
        "client_id": info.client_id,
        "username": principal.user_id().as_str(),
        "token_type": "Bearer",
        "exp": inspection.expires_at.map(|at| at.unix_timestamp()),
        "iat": info.created_at.unix_timestamp(),
        "sub": principal.user_id().as_str(),
        "aud": info.resource,
        "iss": issuer,
        "jti": info.id.as_str(),
        "act": act(agent_id, chain),
        "agent_id": agent_id,
        "agent_type": agent.map(|a| a.agent_type().as_str()),
        "delegated_by": info.delegated_by.as_ref().map(|u| u.as_str()),
        "delegation_chain": chain.iter().map(|l| l.agent().id().as_str()).collect::<Vec<_>>(),
        "delegation_depth": info.delegation_depth,
        "task_id": principal.task_id(),
        "max_operations": info.max_operations,
        "operations_remaining": inspection.remaining_uses,
        "expires_on_completion": info.expires_on_completion,
        "intent_description": info.intent,
        "orchestrator_id": principal.orchestrator().map(|o| o.id().as_str()),
        "environment": info.environment,
    }))
}

/// What the verdict cache says of an access token, when the server has one.
enum Cached {
    /// No cache, or nothing held for the token (or not one of the store's format).
    Unknown,
    /// Held as admitted: a reused answer may be given.
    Standing,
    /// Held as refused: inactive, without a read of the store.
    Refused,
}

fn cached<B: Backend>(server: &Authority<B>, token: &str) -> Cached {
    let Some(cache) = server.verdicts() else {
        return Cached::Unknown;
    };
    let Ok(parsed) = server.store().config().format.parse(token) else {
        return Cached::Unknown;
    };
    match cache.get(&TokenLookup::parsed(&parsed)) {
        Some(Ok(_)) => Cached::Standing,
        Some(Err(_)) => Cached::Refused,
        None => Cached::Unknown,
    }
}

/// The answer for a token of the store's format: its inspection, if it resolves. What the
/// store answered is kept in the verdict cache, if there is one.
async fn access<B: Backend>(server: &Authority<B>, token: &str) -> Option<Value> {
    let parsed = server.store().config().format.parse(token).ok()?;
    let lookup = TokenLookup::parsed(&parsed);
    let cache = server.verdicts();
    let ticket = cache.map(|cache| cache.ticket());
    let (verdict, inspection) = match server.store().inspect(&lookup).await {
        Ok(inspection) => (Ok(inspection.principal.clone()), Some(inspection)),
        Err(error) => (Err(error), None),
    };
    if let (Some(cache), Some(ticket)) = (cache, ticket) {
        // A request would have reached the same verdict (steps 1–5 of the pipeline); a
        // use-limited principal is not kept.
        cache.admit(lookup.hash(), &verdict, ticket);
    }
    Some(access_answer(&inspection?, server.issuer().as_str()))
}

/// The answer for a refresh token: active while it is neither rotated, revoked nor expired,
/// and its client is live.
async fn refresh<B: Backend>(server: &Authority<B>, token: &str) -> Option<Value> {
    let backend = server.store().backend();
    let now = server.now();
    let found = backend.refresh_token(&TokenHash::of(token)).await.ok()??;
    let live = found.rotated_at.is_none()
        && found.revoked_at.is_none()
        && found.expires_at.is_none_or(|at| at > now);
    if !live {
        return None;
    }
    let client = backend.client(&found.client_id).await.ok()??;
    if !client.is_live_at(now) {
        return None;
    }
    Some(without_nulls(json!({
        "active": true,
        "scope": scope::to_scope(&found.capabilities),
        "client_id": found.client_id,
        "username": found.user.as_str(),
        "token_type": "refresh_token",
        "exp": found.expires_at.map(|at| at.unix_timestamp()),
        "iat": found.created_at.unix_timestamp(),
        "sub": found.user.as_str(),
        "aud": found.resource,
        "iss": server.issuer().as_str(),
        "agent_id": found.agent.as_str(),
    })))
}

/// Whether an active answer's audience is for the caller: none (a token bound to no
/// resource), or one this server issues for and, when the request names its resource, that
/// one.
fn for_caller<B: Backend>(server: &Authority<B>, answer: &Value, asked: Option<&str>) -> bool {
    match answer.get("aud").and_then(Value::as_str) {
        None => true,
        Some(aud) => {
            server.resources().iter().any(|r| r == aud) && asked.is_none_or(|asked| asked == aud)
        }
    }
}

async fn introspect<B: Backend>(
    State(server): State<Authority<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::from_form(&headers, &body)?;
    let presented = presented(&headers, &params)?;
    if presented.method == ClientAuth::None {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication",
        ));
    }
    let secret = presented.secret_hash();
    let reused = server
        .recent()
        .zip(secret.as_ref())
        .and_then(|(recent, secret)| recent.caller(&presented.id, secret));
    let client = match reused {
        Some(client) => client,
        None => {
            let client = authenticate(server.store(), &presented, server.now()).await?;
            if let (Some(recent), Some(secret)) = (server.recent(), secret) {
                recent.keep_caller(secret, client.clone());
            }
            client
        }
    };
    if !client.may_introspect {
        let error = OAuthError::invalid_client("this client may not introspect tokens");
        return Err(match presented.method {
            ClientAuth::SecretBasic => error.with_basic_challenge(),
            _ => error,
        });
    }
    let token = params.require("token")?;
    let hash = TokenHash::of(token);
    let now = server.now().unix_timestamp();
    let cached = cached(&server, token);
    let reused = match (&cached, server.verdicts()) {
        // With a cache, an answer is reused only while the token's verdict stands there.
        (Cached::Standing, _) | (_, None) => {
            server.recent().and_then(|recent| recent.answer(&hash, now))
        }
        _ => None,
    };
    let answer = match (reused, cached) {
        (Some(answer), _) => Some(answer),
        // Refused as an access token: a refresh token (random base64url) never has an access
        // token's shape and checksum, so it is not one either.
        (None, Cached::Refused) => None,
        (None, _) => fresh(&server, token, params.get("token_type_hint")).await,
    };
    if let (Some(recent), Some(answer)) = (server.recent(), &answer) {
        recent.keep_answer(hash, answer);
    }
    let answer = answer
        .filter(|answer| for_caller(&server, answer, params.get("resource")))
        .unwrap_or_else(inactive);
    Ok(no_store_json(StatusCode::OK, answer))
}

/// The answer read anew: the kind the hint names first, then the other.
async fn fresh<B: Backend>(
    server: &Authority<B>,
    token: &str,
    hint: Option<&str>,
) -> Option<Value> {
    match hint {
        Some("refresh_token") => match refresh(server, token).await {
            Some(answer) => Some(answer),
            None => access(server, token).await,
        },
        _ => match access(server, token).await {
            Some(answer) => Some(answer),
            None => refresh(server, token).await,
        },
    }
}

/// `POST /oauth/introspect`.
pub(crate) fn router<B: Backend>(server: Authority<B>) -> Router {
    let route = format!("{}{INTROSPECT}", server.issuer().path());
    Router::new()
        .route(&route, post(introspect::<B>))
        .layer(cors())
        .with_state(server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::AgentRef;

    #[test]
    fn act_nests_the_least_recent_deepest() {
        let chain = vec![
            DelegationLink::new(AgentRef::new("a1", "first"), "t1"),
            DelegationLink::new(AgentRef::new("a2", "second"), "t2"),
        ];
        assert_eq!(
            act("a3", &chain),
            json!({"sub": "a3", "act": {"sub": "a2", "act": {"sub": "a1"}}})
        );
        assert_eq!(act("a3", &[]), json!({"sub": "a3"}));
    }

    #[test]
    fn nulls_are_left_out() {
        assert_eq!(without_nulls(json!({"a": 1, "b": null})), json!({"a": 1}));
    }
}
