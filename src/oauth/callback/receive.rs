//! The callback, at each provider's redirect URI: the `state` taken once and checked against
//! the session it was handed to, the code exchanged server-side, the tokens sealed and kept.
//! Every refusal is a `400` page (a `403` for a person no longer allowed, a `502` when the
//! provider gives no token) and a `callback_refused` audit event; neither the state nor the
//! code is ever recorded.

use ::axum::extract::{RawQuery, State};
use ::axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, Uri};

use super::exchange;
use super::page::{Page, connected, refused};
use super::receiver::CallbackReceiver;
use super::record::{CallbackState, ProviderToken, StateTaken};
use super::start::{may_connect, person, session, unavailable};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::{NotFound, StoreError};
use crate::oauth::params::Params;
use crate::oauth::secret;
use crate::principal::{Principal, UserId};
use crate::store::Backend;
use crate::token::TokenHash;

/// A refusal: what the page says, and the audit event's detail.
struct Refusal {
    status: StatusCode,
    page: &'static str,
    detail: String,
}

fn refusal(page: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        page,
        detail: detail.into(),
    }
}

/// Why a callback is not finished: a refusal to audit, or a page already decided.
enum Stop {
    Refuse(Refusal),
    Page(Page),
}

const NOT_OURS: &str = "This callback does not answer a connection started from this server.";
const REPLAYED: &str = "This callback was answered already: a connection is finished once.";
const OTHER_SESSION: &str =
    "This callback answers a connection started in another session. Start again here.";
const EXPIRED: &str = "This connection was started too long ago. Start again.";

pub(crate) async fn receive<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Option<Principal>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    // The route is this provider's redirect URI's path.
    let Some(provider) = receiver.called_back_at(uri.path()).map(|p| p.name.clone()) else {
        return refused(StatusCode::NOT_FOUND, NOT_OURS);
    };
    let user = principal
        .as_ref()
        .filter(|p| p.auth_source() == crate::principal::AuthSource::Session)
        .map(|p| p.user_id().clone());
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => {
            let detail = format!("provider {provider}: {}", error.description());
            return refuse(&receiver, user, None, refusal(NOT_OURS, detail)).await;
        }
    };
    let Some(state) = params.get("state").filter(|s| !s.is_empty()) else {
        let detail = format!("provider {provider}: no state");
        return refuse(&receiver, user, None, refusal(NOT_OURS, detail)).await;
    };
    let now = receiver.store.clock().now();
    let taken = match (receiver.store.backend())
        .take_callback_state(&TokenHash::of(state), now)
        .await
    {
        Ok(taken) => taken,
        Err(_) => return unavailable().into_response(),
    };
    let pending = match taken {
        StateTaken::Taken(pending) => pending,
        StateTaken::Replayed(pending) => {
            let detail = format!("provider {provider}: a state used before");
            return refuse(&receiver, user, Some(&pending), refusal(REPLAYED, detail)).await;
        }
        StateTaken::Unknown => {
            let detail = format!("provider {provider}: a state this server did not issue");
            return refuse(&receiver, user, None, refusal(NOT_OURS, detail)).await;
        }
    };
    match finish(
        &receiver,
        principal.as_ref(),
        &headers,
        &params,
        &pending,
        &provider,
    )
    .await
    {
        Ok(page) => page,
        Err(Stop::Refuse(refusal)) => refuse(&receiver, user, Some(&pending), refusal).await,
        Err(Stop::Page(page)) => page.into_response(),
    }
}

/// The checks after the state was taken, the exchange and the keeping: the page, or a refusal
/// to audit, or a page already decided.
async fn finish<B: Backend>(
    receiver: &CallbackReceiver<B>,
    principal: Option<&Principal>,
    headers: &HeaderMap,
    params: &Params,
    pending: &CallbackState,
    provider_name: &str,
) -> Result<Response, Stop> {
    let now = receiver.store.clock().now();
    if pending.expires_at <= now {
        return Err(Stop::Refuse(refusal(
            EXPIRED,
            format!("provider {provider_name}: an expired state"),
        )));
    }
    if pending.provider != provider_name {
        return Err(Stop::Refuse(refusal(
            NOT_OURS,
            format!(
                "provider {provider_name}: a state issued for provider {}",
                pending.provider
            ),
        )));
    }
    let same_session = session(headers, &receiver.session_cookie) == Some(pending.session);
    let same_person = person(principal).ok().as_ref() == Some(&pending.user);
    if !(same_session && same_person) {
        return Err(Stop::Refuse(refusal(
            OTHER_SESSION,
            format!("provider {provider_name}: a state issued to another session"),
        )));
    }
    let Some(provider) = receiver.find(provider_name) else {
        return Err(Stop::Refuse(refusal(
            NOT_OURS,
            "a provider no longer configured",
        )));
    };
    if let Some(issuer) = &provider.issuer {
        if params.get("iss") != Some(issuer.as_str()) {
            return Err(Stop::Refuse(refusal(
                NOT_OURS,
                format!("provider {provider_name}: the callback's iss is not the provider's"),
            )));
        }
    }
    if let Some(error) = params.get("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(40)
            .collect();
        return Err(Stop::Refuse(refusal(
            "The provider did not grant access.",
            format!("provider {provider_name}: the provider answered {error}"),
        )));
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return Err(Stop::Refuse(refusal(
            NOT_OURS,
            format!("provider {provider_name}: no code"),
        )));
    };
    let store = &receiver.store;
    let agent = match store.agent(&pending.agent).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            return Err(Stop::Refuse(refusal(
                "The agent no longer exists.",
                format!("provider {provider_name}: the agent is gone"),
            )));
        }
        Err(_) => return Err(Stop::Page(unavailable())),
    };
    may_connect(receiver, &pending.user, &agent, provider_name)
        .await
        .map_err(Stop::Page)?;
    let verifier = receiver
        .key
        .open(&pending.hash.to_hex(), "verifier", &pending.verifier)
        .map_err(|_| {
            Stop::Refuse(refusal(
                "This connection cannot be finished by this server.",
                format!("provider {provider_name}: the verifier does not open with this key"),
            ))
        })?;
    let received = exchange::exchange(&receiver.http, provider, code, &verifier)
        .await
        .map_err(|exchange::Refused(why)| {
            Stop::Refuse(Refusal {
                status: StatusCode::BAD_GATEWAY,
                page: "The provider did not give a token for this connection.",
                detail: format!("provider {provider_name}: {why}"),
            })
        })?;
    let id = format!(
        "ptk_{}",
        secret::random(16).map_err(|_| Stop::Page(unavailable()))?
    );
    let access = (receiver.key.seal(&id, "access", &received.access))
        .map_err(|_| Stop::Page(unavailable()))?;
    let refresh = match &received.refresh {
        Some(refresh) => Some(
            (receiver.key.seal(&id, "refresh", refresh)).map_err(|_| Stop::Page(unavailable()))?,
        ),
        None => None,
    };
    let mut token = ProviderToken::new(
        id.clone(),
        provider_name,
        agent.id.clone(),
        pending.user.clone(),
        now,
        received.token_type,
        access,
    );
    token.refresh = refresh;
    token.scopes = received.scopes.unwrap_or_else(|| provider.scopes.clone());
    token.expires_at = (received.expires_in)
        .and_then(|d| time::Duration::try_from(d).ok())
        .and_then(|d| now.checked_add(d));
    match store.backend().put_provider_token(&token).await {
        Ok(()) => {}
        Err(StoreError::NotFound(NotFound::Agent(_))) => {
            return Err(Stop::Refuse(refusal(
                "The agent no longer exists.",
                format!("provider {provider_name}: the agent is gone"),
            )));
        }
        Err(_) => return Err(Stop::Page(unavailable())),
    }
    receiver
        .record(
            AuditEvent::new(now, AuditAction::ProviderConnected, Outcome::Success)
                .agent(agent.id.clone())
                .parent(agent.parent.clone())
                .actor(pending.user.clone())
                .detail(format!(
                    "provider {provider_name}, token {id}, scopes {}",
                    token.scopes.join(" ")
                )),
        )
        .await;
    Ok(connected(&agent.slug, provider_name, &token.scopes))
}

/// Audits `refusal` and answers its page.
async fn refuse<B: Backend>(
    receiver: &CallbackReceiver<B>,
    user: Option<UserId>,
    pending: Option<&CallbackState>,
    refusal: Refusal,
) -> Response {
    let mut event = AuditEvent::new(
        receiver.store.clock().now(),
        AuditAction::CallbackRefused,
        Outcome::Denied,
    )
    .detail(refusal.detail);
    event.actor = user;
    event.agent = pending.map(|p| p.agent.clone());
    receiver.record(event).await;
    refused(refusal.status, refusal.page)
}
