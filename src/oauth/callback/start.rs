//! `POST /connect/{provider}`: a signed-in administrator of an agent starts connecting it. The
//! pending authorization is kept (its state's hash, the session's, the sealed verifier, an
//! expiry) and the person is sent to the provider with `303`.

use ::axum::body::Bytes;
use ::axum::extract::{Path, RawQuery, State};
use ::axum::response::{IntoResponse, Response};
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use super::exchange;
use super::page::{Page, confirm, harden};
use super::receiver::CallbackReceiver;
use super::record::CallbackState;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::oauth::consent::cookie as cookie_named;
use crate::oauth::params::Params;
use crate::oauth::secret;
use crate::principal::{AuthSource, Principal, UserId};
use crate::store::{Agent, Backend, Operation, authorize};
use crate::token::TokenHash;

/// The person signed in by a session, or the page that says why not.
pub(super) fn person(principal: Option<&Principal>) -> Result<UserId, Page> {
    match principal {
        Some(p) if p.auth_source() == AuthSource::Session => Ok(p.user_id().clone()),
        Some(_) => Err(Page::new(
            StatusCode::FORBIDDEN,
            "Only a person signed in to this server may connect an agent, not an agent token.",
        )),
        None => Err(Page::new(
            StatusCode::UNAUTHORIZED,
            "Sign in to this server first.",
        )),
    }
}

/// The SHA-256 of the session cookie `name` in `headers`.
pub(super) fn session(headers: &HeaderMap, name: &str) -> Option<TokenHash> {
    cookie_named(headers, name)
        .filter(|value| !value.is_empty())
        .map(|value| TokenHash::from_bytes(Sha256::digest(value.as_bytes()).into()))
}

/// Whether `user` may connect `agent` (its owner or an admin): `Err` the page, the denial
/// audited.
pub(super) async fn may_connect<B: Backend>(
    receiver: &CallbackReceiver<B>,
    user: &UserId,
    agent: &Agent,
    provider: &str,
) -> Result<(), Page> {
    let role = receiver
        .store
        .role_of(&agent.id, user)
        .await
        .map_err(|_| unavailable())?;
    if authorize(user, agent, role, Operation::ManageAgent).is_ok() {
        return Ok(());
    }
    receiver
        .record(
            AuditEvent::new(
                receiver.store.clock().now(),
                AuditAction::ProviderAuthorizationStarted,
                Outcome::Denied,
            )
            .agent(agent.id.clone())
            .parent(agent.parent.clone())
            .actor(user.clone())
            .detail(format!(
                "provider {provider}: neither the owner nor an admin of the agent"
            )),
        )
        .await;
    Err(Page::new(
        StatusCode::FORBIDDEN,
        "Only the agent's owner, or a person with an admin grant on it, may connect it.",
    ))
}

pub(super) fn unavailable() -> Page {
    Page::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server cannot reach its store. Try again later.",
    )
}

pub(crate) async fn start<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Option<Principal>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: Bytes,
) -> Response {
    begin(&receiver, principal.as_ref(), &headers, &provider, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn begin<B: Backend>(
    receiver: &CallbackReceiver<B>,
    principal: Option<&Principal>,
    headers: &HeaderMap,
    provider: &str,
    body: &[u8],
) -> Result<Response, Page> {
    let Some(provider) = receiver.find(provider) else {
        return Err(Page::new(
            StatusCode::NOT_FOUND,
            "No such provider is configured.",
        ));
    };
    let user = person(principal)?;
    let params = Params::check_form(headers, body)
        .and_then(|()| Params::parse(body))
        .map_err(|error| Page::new(StatusCode::BAD_REQUEST, error.description()))?;
    let slug = params.get("agent").unwrap_or_default();
    let store = &receiver.store;
    let agent = match crate::token::valid_slug(slug) {
        true => store.agent_by_slug(slug).await.map_err(|_| unavailable())?,
        false => None,
    };
    let Some(agent) = agent else {
        return Err(Page::new(StatusCode::NOT_FOUND, "No such agent."));
    };
    may_connect(receiver, &user, &agent, &provider.name).await?;
    let Some(session) = session(headers, &receiver.session_cookie) else {
        return Err(Page::new(
            StatusCode::BAD_REQUEST,
            "This request carries no session cookie to bind the connection to.",
        ));
    };
    let state = secret::random(32).map_err(|_| unavailable())?;
    let hash = TokenHash::of(&state);
    let authorization = exchange::authorization(provider, &state);
    let verifier = receiver
        .key
        .seal(&hash.to_hex(), "verifier", &authorization.verifier)
        .map_err(|_| unavailable())?;
    let now = store.clock().now();
    let lifetime = time::Duration::try_from(receiver.lifetime).unwrap_or(time::Duration::MINUTE);
    // Lapsed authorizations go as new ones come: the table holds minutes' worth.
    let _ = store.backend().purge_callback_states(now).await;
    let pending = CallbackState::new(
        hash,
        session,
        user.clone(),
        agent.id.clone(),
        provider.name.clone(),
        verifier,
        now,
        now + lifetime,
    );
    store
        .backend()
        .insert_callback_state(&pending)
        .await
        .map_err(|_| unavailable())?;
    receiver
        .record(
            AuditEvent::new(
                now,
                AuditAction::ProviderAuthorizationStarted,
                Outcome::Success,
            )
            .agent(agent.id.clone())
            .parent(agent.parent.clone())
            .actor(user)
            .detail(format!("provider {}", provider.name)),
        )
        .await;
    let location = HeaderValue::from_str(&authorization.url).map_err(|_| unavailable())?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, location);
    Ok(harden(response))
}

/// `GET /connect/{provider}?agent=…`: a page with the button that starts (a link may lead
/// here; only the post keeps anything). Not signed in: the sign-in page, and back.
pub(crate) async fn ask<B: Backend>(
    State(receiver): State<CallbackReceiver<B>>,
    principal: Option<Principal>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    token: Option<::axum::Extension<crate::server::FormToken>>,
) -> Response {
    let query = query.unwrap_or_default();
    let Some(provider) = receiver.find(&provider) else {
        return Page::new(StatusCode::NOT_FOUND, "No such provider is configured.").into_response();
    };
    let here = format!("/connect/{}", provider.name);
    if principal.is_none() {
        let back = format!("{here}?{query}");
        let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::from_str(&format!("{}?return={back}", receiver.sign_in))
        {
            response.headers_mut().insert(LOCATION, location);
        }
        return harden(response);
    }
    let user = match person(principal.as_ref()) {
        Ok(user) => user,
        Err(page) => return page.into_response(),
    };
    let params = match Params::parse(query.as_bytes()) {
        Ok(params) => params,
        Err(error) => {
            return Page::new(StatusCode::BAD_REQUEST, error.description()).into_response();
        }
    };
    let slug = params.get("agent").unwrap_or_default();
    let agent = match crate::token::valid_slug(slug) {
        true => receiver.store.agent_by_slug(slug).await.ok().flatten(),
        false => None,
    };
    let Some(agent) = agent else {
        return Page::new(StatusCode::NOT_FOUND, "No such agent.").into_response();
    };
    let role = receiver
        .store
        .role_of(&agent.id, &user)
        .await
        .ok()
        .flatten();
    if authorize(&user, &agent, role, Operation::ManageAgent).is_err() {
        return Page::new(
            StatusCode::FORBIDDEN,
            "Only the agent's owner, or a person with an admin grant on it, may connect it.",
        )
        .into_response();
    }
    confirm(
        &here,
        &agent.slug,
        &provider.name,
        provider.authorize_url.host_str().unwrap_or_default(),
        &provider.scopes,
        token.as_ref().map_or("", |token| token.0.as_str()),
    )
}
