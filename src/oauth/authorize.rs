//! The authorization endpoint, `GET`/`POST /oauth/authorize`: code + PKCE (S256), the consent
//! page, and the redirect back with `code`, `state` and `iss` (or `error`, `state` and `iss`).
//!
//! The request is checked first (see [`request`](super::request)); then the person: not signed
//! in → the sign-in page, with a way back here; not allowed to consent → a page.

use std::sync::Arc;

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::{RawQuery, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use http::{HeaderMap, StatusCode};

use super::authority::Authority;
use super::client::{Client, ClientKind};
use super::code::AuthorizationCode;
use super::connect::{Acting, Refused, acting, connection_agent, grantable};
use super::consent::{self, Binding, Consent};
use super::page;
use super::params::Params;
use super::redirect::RedirectUri;
use super::request::{Request, Stop, back, check, found};
use super::routes::AUTHORIZE;
use super::scope;
use super::secret::{self, CODE};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::CapabilitySet;
use crate::principal::{AuthSource, Principal, UserId};
use crate::server::SameOriginLayer;
use crate::server::web::Chrome;
use crate::store::Backend;

/// What the consent steps need beyond the [`Authority`]: the key consent forms are bound
/// with, the sign-in page, the session cookie's name.
pub(crate) struct Consenting {
    pub(crate) key: [u8; 32],
    pub(crate) sign_in: String,
    pub(crate) session_cookie: String,
}

/// The endpoint's state.
struct Endpoint<B> {
    authority: Authority<B>,
    consenting: Arc<Consenting>,
}

impl<B> Clone for Endpoint<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            consenting: self.consenting.clone(),
        }
    }
}

/// The person signed in, or where to send them.
fn person<B: Backend>(
    server: &Authority<B>,
    sign_in: &str,
    principal: Option<Principal>,
    request: &Request,
) -> Result<UserId, Stop> {
    match principal {
        Some(p) if p.auth_source() == AuthSource::Session => Ok(p.user_id().clone()),
        Some(_) => Err(Stop::Page(
            StatusCode::FORBIDDEN,
            "Only a person signed in to this server may allow access, not an agent.".into(),
        )),
        None => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in request.params.iter() {
                query.append_pair(name, value);
            }
            let here = format!("{}{AUTHORIZE}?{}", server.issuer().path(), query.finish());
            let target: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            let location = format!("{sign_in}?return={target}");
            Err(Stop::Redirect(location))
        }
    }
}

/// The host (and port, when not the default) of a metadata document's URL: the site that
/// vouches for the client, shown to the person beside the name the document gives itself.
pub(crate) fn document_host(client: &Client) -> Option<String> {
    if client.kind != ClientKind::MetadataDocument {
        return None;
    }
    let uri = RedirectUri::parse(&client.id).ok()?;
    Some(match uri.url().port() {
        Some(port) => format!("{}:{port}", uri.host()),
        None => uri.host().to_owned(),
    })
}

/// What kind of client, in words, for a consent page.
pub(crate) fn kind_words(kind: &ClientKind) -> &'static str {
    match kind {
        ClientKind::Agent(_) => "a registered agent",
        ClientKind::Registered => "a self-registered application",
        ClientKind::MetadataDocument => "an application known by its metadata document",
    }
}

/// Who may consent, as whom, and what may be granted.
struct Standing {
    user: UserId,
    binding: Binding,
    acting: Acting,
    grantable: CapabilitySet,
}

async fn standing<B: Backend>(
    endpoint: &Endpoint<B>,
    principal: Option<Principal>,
    headers: &HeaderMap,
    request: &Request,
) -> Result<Standing, Stop> {
    let server = &endpoint.authority;
    let consenting = &endpoint.consenting;
    let user = person(server, &consenting.sign_in, principal, request)?;
    let acting = match acting(server, &request.client, &user).await? {
        Ok(acting) => acting,
        Err(Refused(why)) => return Err(Stop::Page(StatusCode::FORBIDDEN, why.into())),
    };
    let grantable = grantable(server, &acting, &user, &request.requested)
        .await?
        .ok_or_else(|| {
            Stop::Page(
                StatusCode::FORBIDDEN,
                "The agent's owner is not active.".into(),
            )
        })?;
    if grantable.is_empty() {
        return Err(request.error(
            server,
            "invalid_scope",
            "nothing asked for is within what may be granted",
        ));
    }
    let cookie = consent::cookie(headers, &consenting.session_cookie);
    Ok(Standing {
        binding: Binding::new(user.clone(), cookie),
        user,
        acting,
        grantable,
    })
}

/// A duration in words, in its largest whole unit: `1 hour`, `30 days`, `90 seconds`.
fn words(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = [(86_400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(size, _)| seconds >= *size && seconds % size == 0)
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// How long access lasts, in words, for a consent page.
pub(crate) fn lifetime_words<B: Backend>(server: &Authority<B>) -> String {
    format!(
        "Each access lasts {}; the application may renew it for up to {} unless you disconnect it.",
        words(server.access_lifetime()),
        words(server.refresh_lifetime()),
    )
}

/// The consent page.
async fn ask<B: Backend>(
    endpoint: &Endpoint<B>,
    principal: Option<Principal>,
    headers: &HeaderMap,
    params: Params,
) -> Result<Response, Stop> {
    let server = &endpoint.authority;
    let request = check(server, params).await?;
    let standing = standing(endpoint, principal, headers, &request).await?;
    let now = server.now().unix_timestamp();
    let csrf = consent::token(
        &endpoint.consenting.key,
        now,
        &standing.binding,
        &request.fields(),
    );
    let mut hidden: Vec<(&str, String)> = request
        .fields()
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.to_owned())))
        .collect();
    hidden.push(("csrf", csrf));
    let capabilities = standing.grantable.to_strings();
    let unavailable: Vec<String> = (request.requested.iter())
        .filter(|p| !standing.grantable.covers(p))
        .map(|p| p.to_string())
        .collect();
    let owner = match &standing.acting {
        Acting::Agent(agent) => agent.owner.as_str(),
        Acting::Connection(_) => standing.user.as_str(),
    };
    let action = format!("{}{AUTHORIZE}", server.issuer().path());
    let client_host = document_host(&request.client);
    let consent = Consent {
        chrome: Chrome::anonymous("Allow access", None),
        person: standing.user.as_str(),
        client_name: &request.client.name,
        client_host: client_host.as_deref(),
        client_kind: kind_words(&request.client.kind),
        agent: standing.acting.describe(),
        owner,
        redirect_host: Some(&request.redirect_host),
        user_code: None,
        capabilities: &capabilities,
        unavailable: &unavailable,
        lifetime: lifetime_words(server),
        action: &action,
        hidden,
    };
    Ok(consent.response())
}

/// The person's answer to the consent form.
async fn decide<B: Backend>(
    endpoint: &Endpoint<B>,
    principal: Option<Principal>,
    headers: &HeaderMap,
    params: Params,
    ticked: Vec<String>,
) -> Result<Response, Stop> {
    let csrf = params.get("csrf").unwrap_or_default().to_owned();
    let decision = params.get("decision").unwrap_or_default().to_owned();
    let params = params.without("csrf").without("decision");
    let server = &endpoint.authority;
    let request = check(server, params).await?;
    let standing = standing(endpoint, principal, headers, &request).await?;
    let now = server.now();
    let key = &endpoint.consenting.key;
    if !consent::verify(
        key,
        &csrf,
        now.unix_timestamp(),
        &standing.binding,
        &request.fields(),
    ) {
        // As every form of the pages: without its token, or with another session's, 403.
        return Err(Stop::Page(
            StatusCode::FORBIDDEN,
            "This consent form has expired or was not shown to you. Start again from the application.".into(),
        ));
    }
    let shown = standing.grantable.to_strings();
    let granted: CapabilitySet = (shown.iter())
        .filter(|c| ticked.contains(c))
        .filter_map(|c| crate::ceiling::Capability::parse(c).ok())
        .collect();
    let agent_id = match &standing.acting {
        Acting::Agent(agent) | Acting::Connection(Some(agent)) => Some(agent.id.clone()),
        Acting::Connection(None) => None,
    };
    if decision != "allow" || granted.is_empty() {
        let mut event = AuditEvent::new(now, AuditAction::ConsentRefused, Outcome::Denied)
            .actor(standing.user.clone())
            .detail(format!(
                "client {}: the person denied access",
                request.client.id
            ));
        event.agent = agent_id;
        server.record(event).await;
        return Err(request.error(server, "access_denied", "the person denied access"));
    }
    // A metadata document's client is stored at its first consent: what follows refers to it.
    server.keep_client(&request.client).await?;
    let agent = match standing.acting {
        Acting::Agent(agent) => agent,
        Acting::Connection(existing) => {
            connection_agent(server, &request.client, &standing.user, existing, &granted).await?
        }
    };
    let code = secret::secret(CODE)?;
    let lifetime =
        time::Duration::try_from(server.code_lifetime()).unwrap_or(time::Duration::seconds(60));
    let record = AuthorizationCode {
        hash: code.hash(),
        client_id: request.client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        challenge: request.challenge.clone(),
        resource: request.resource.clone(),
        user: standing.user.clone(),
        agent: agent.id.clone(),
        capabilities: granted.clone(),
        created_at: now,
        expires_at: now + lifetime,
        redeemed_at: None,
        family: None,
        replayed_at: None,
    };
    server.store().backend().insert_code(&record).await?;
    server.touch_client(&request.client).await;
    server
        .record(
            AuditEvent::new(now, AuditAction::CodeIssued, Outcome::Success)
                .agent(agent.id.clone())
                .parent(agent.parent.clone())
                .actor(standing.user.clone())
                .detail(format!(
                    "client {}, scope {}, resource {}",
                    request.client.id,
                    scope::to_scope(&granted),
                    request.resource.as_deref().unwrap_or("none"),
                )),
        )
        .await;
    let mut pairs = vec![("code", code.expose())];
    if let Some(state) = request.get("state") {
        pairs.push(("state", state));
    }
    pairs.push(("iss", server.issuer().as_str()));
    Ok(found(back(&request.redirect_uri, &pairs)))
}

async fn get_authorize<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    principal: Option<Principal>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return page::error(StatusCode::BAD_REQUEST, error.description()),
    };
    ask(&endpoint, principal, &headers, params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn post_authorize<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    principal: Option<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = Params::check_form(&headers, &body)
        .and_then(|()| Params::parse_with_list(&body, Some("capability")));
    let (params, ticked) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return page::error(StatusCode::BAD_REQUEST, error.description()),
    };
    // A decision is the consent form's, token or not: one without its token is refused, never
    // taken for a new request.
    let answer = if params.get("csrf").is_some() || params.get("decision").is_some() {
        decide(&endpoint, principal, &headers, params, ticked).await
    } else {
        // An authorization request sent as a form post (RFC 6749 §3.1).
        ask(&endpoint, principal, &headers, params).await
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `GET`/`POST /oauth/authorize`, with the pages' headers, and cross-site posts carrying the
/// session cookie refused (the consent form is this server's own).
pub(crate) fn router<B: Backend>(authority: Authority<B>, consenting: Consenting) -> Router {
    let route = format!("{}{AUTHORIZE}", authority.issuer().path());
    page::hardened(
        Router::new()
            .route(&route, get(get_authorize::<B>).post(post_authorize::<B>))
            .layer(SameOriginLayer::for_session_cookie().html())
            .with_state(Endpoint {
                authority,
                consenting: Arc::new(consenting),
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        use std::time::Duration;
        assert_eq!(words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(words(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(words(Duration::from_secs(90)), "90 seconds");
        assert_eq!(words(Duration::from_secs(120)), "2 minutes");
    }
}
