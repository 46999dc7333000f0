//! `GET`/`POST /oauth/device`: where the person enters the user code and answers, in the
//! layout of the authorization endpoint's pages (the same consent page, headers and CSRF
//! binding).
//!
//! - `GET` (`?user_code=` from `verification_uri_complete` fills the field in): not signed
//!   in → the sign-in page, with a way back here; signed in → the entry form.
//! - `POST` without `decision`: the code entered. A code that is not 8 letters of the alphabet
//!   is pointed out; a wrong one (unknown, answered, expired) shows the form again with the
//!   tries left ([`entries`](super::entries)); a right one shows the consent page, with the
//!   code for the person to compare with their device's.
//! - `POST` with `decision`: the consent form's answer, recorded once
//!   ([`Backend::decide_device`](crate::store::Backend::decide_device)); a page says what
//!   happens next.
//!
//! Each form carries a `csrf` token bound, as the consent page's, to the session and to what
//! it is for: the entry form, or the consent to one user code.

use std::sync::Arc;

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::{RawQuery, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use askama::Template;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use super::DeviceAuthorization;
use super::entries::{Throttled, WrongEntries};
use super::flow::DeviceFlow;
use super::user_code::{LENGTH, UserCode};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::{Capability, CapabilitySet};
use crate::oauth::authority::Authority;
use crate::oauth::authorize::{Consenting, document_host, kind_words, lifetime_words};
use crate::oauth::client::Client;
use crate::oauth::connect::{Acting, Refused, acting, connection_agent, grantable};
use crate::oauth::consent::{self, Binding, Consent};
use crate::oauth::page;
use crate::oauth::params::Params;
use crate::oauth::registration::ClientAddress;
use crate::oauth::request::Stop;
use crate::oauth::routes::DEVICE;
use crate::oauth::scope;
use crate::principal::{AuthSource, Principal, UserId};
use crate::server::SameOriginLayer;
use crate::server::web::{Chrome, render};
use crate::store::Backend;

/// What the entry form's token binds: it is the entry form's, for no code in particular.
const ENTRY: [(&str, Option<&str>); 1] = [("device", Some("entry"))];

/// What a consent form's token binds: consent to this user code.
fn consenting_to(code: &str) -> [(&str, Option<&str>); 2] {
    [("device", Some("consent")), ("user_code", Some(code))]
}

/// The page's state.
struct Endpoint<B> {
    authority: Authority<B>,
    consenting: Arc<Consenting>,
    entries: Arc<WrongEntries>,
    flow: DeviceFlow,
}

impl<B> Clone for Endpoint<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            consenting: self.consenting.clone(),
            entries: self.entries.clone(),
            flow: self.flow,
        }
    }
}

/// Who is signed in and how their forms are bound, or where to send them.
struct Person {
    user: UserId,
    binding: Binding,
}

impl<B: Backend> Endpoint<B> {
    fn action(&self) -> String {
        format!("{}{DEVICE}", self.authority.issuer().path())
    }

    /// The person signed in; else the sign-in page, back here (with the code typed so far).
    fn person(
        &self,
        principal: Option<Principal>,
        headers: &HeaderMap,
        typed: Option<&str>,
    ) -> Result<Person, Stop> {
        match principal {
            Some(p) if p.auth_source() == AuthSource::Session => {
                let cookie = consent::cookie(headers, &self.consenting.session_cookie);
                let user = p.user_id().clone();
                Ok(Person {
                    binding: Binding::new(user.clone(), cookie),
                    user,
                })
            }
            Some(_) => Err(Stop::Page(
                StatusCode::FORBIDDEN,
                "Only a person signed in to this server may connect a device, not an agent.".into(),
            )),
            None => {
                let mut here = self.action();
                if let Some(code) = typed.and_then(UserCode::parse) {
                    here.push_str(&format!("?user_code={}", code.display()));
                }
                let target: String =
                    url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err(Stop::Redirect(format!(
                    "{}?return={target}",
                    self.consenting.sign_in
                )))
            }
        }
    }

    fn now(&self) -> i64 {
        self.authority.now().unix_timestamp()
    }

    /// The entry form, `typed` filled in, `message` above it.
    fn entry(&self, status: StatusCode, person: &Person, typed: &str, message: &str) -> Response {
        let csrf = consent::token(&self.consenting.key, self.now(), &person.binding, &ENTRY);
        // What was typed goes back into the field, cut to what a code with dashes could be.
        let typed: String = typed.chars().take(2 * LENGTH).collect();
        let page = Entry {
            chrome: Chrome::anonymous("Connect a device", None),
            person: person.user.as_str(),
            message,
            action: self.action(),
            csrf,
            typed,
            max: 2 * LENGTH,
        };
        render(status, &page)
    }

    /// The key a session's wrong entries count under: its cookie's digest, or (a session
    /// known by another means) the person's.
    fn session_key(person: &Person) -> [u8; 32] {
        person.binding.session.unwrap_or_else(|| {
            Sha256::digest(format!("user {}", person.user.as_str()).as_bytes()).into()
        })
    }

    /// A pending request of a live client with this user code.
    async fn pending(
        &self,
        code: &UserCode,
    ) -> Result<Option<(DeviceAuthorization, Client)>, Stop> {
        let now = self.authority.now();
        let backend = self.authority.store().backend();
        let Some(found) = backend.device_by_user_code(&code.hash()).await? else {
            return Ok(None);
        };
        if !found.is_pending_at(now) {
            return Ok(None);
        }
        let client = (backend.client(&found.client_id).await?).filter(|c| c.is_live_at(now));
        Ok(client.map(|client| (found, client)))
    }

    /// Refuses the rest of the window's entries: 429 with `Retry-After`, audited once.
    async fn throttled(
        &self,
        person: &Person,
        address: Option<std::net::IpAddr>,
        t: Throttled,
    ) -> Response {
        tracing::info!(limit = t.limit.as_str(), client = ?address, "oauth: wrong user codes throttled");
        if t.first {
            let from = address.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
            self.authority
                .record(
                    AuditEvent::new(
                        self.authority.now(),
                        AuditAction::DeviceEntryThrottled,
                        Outcome::Denied,
                    )
                    .actor(person.user.clone())
                    .detail(format!("{} limit, from {from}", t.limit.as_str())),
                )
                .await;
        }
        let minutes = t.retry_after.as_secs().div_ceil(60).max(1);
        let wait = format!(
            "Wait {minutes} minute{s}, then enter the code your device shows again.",
            s = if minutes == 1 { "" } else { "s" },
        );
        let mut response = page::said(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes",
            &wait,
            "Nothing was shared.",
        );
        response.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from(t.retry_after.as_secs().max(1)),
        );
        response
    }

    /// The code entered: the consent page if it is right, else the form again.
    async fn enter(
        &self,
        person: &Person,
        address: Option<std::net::IpAddr>,
        params: &Params,
    ) -> Result<Response, Stop> {
        let typed = params.get("user_code").unwrap_or_default();
        let csrf = params.get("csrf").unwrap_or_default();
        if !consent::verify(
            &self.consenting.key,
            csrf,
            self.now(),
            &person.binding,
            &ENTRY,
        ) {
            // As every form of the pages: without its token, or with another session's, 403.
            let why = "This form has expired or was not shown to you: enter the code again.";
            return Ok(self.entry(StatusCode::FORBIDDEN, person, typed, why));
        }
        let Some(code) = UserCode::parse(typed) else {
            let why = "A code is 8 letters, like BCDF-GHJK: check the code your device shows.";
            return Ok(self.entry(StatusCode::BAD_REQUEST, person, typed, why));
        };
        let attempt = match self.entries.take(Self::session_key(person), address) {
            Ok(attempt) => attempt,
            Err(t) => return Ok(self.throttled(person, address, t).await),
        };
        match self.pending(&code).await? {
            Some((found, client)) => {
                attempt.give_back();
                self.ask(person, &code, &found, &client).await
            }
            None => {
                let left = match attempt.left {
                    0 => "That was the last try for now.".to_owned(),
                    1 => "You can try once more.".to_owned(),
                    n => format!("You can try {n} more times."),
                };
                let why = format!(
                    "That code is not right, or it has expired. Check the code your device \
                     shows. {left}"
                );
                Ok(self.entry(StatusCode::BAD_REQUEST, person, typed, &why))
            }
        }
    }

    /// Who the client will act as for the person, and what may be granted of what it asked.
    async fn standing(
        &self,
        person: &Person,
        found: &DeviceAuthorization,
        client: &Client,
    ) -> Result<(Acting, CapabilitySet), Stop> {
        let server = &self.authority;
        let acting = match acting(server, client, &person.user).await? {
            Ok(acting) => acting,
            Err(Refused(why)) => return Err(Stop::Page(StatusCode::FORBIDDEN, why.into())),
        };
        let grantable = grantable(server, &acting, &person.user, &found.requested)
            .await?
            .ok_or_else(|| {
                Stop::Page(
                    StatusCode::FORBIDDEN,
                    "The agent's owner is not active.".into(),
                )
            })?;
        Ok((acting, grantable))
    }

    /// The consent page for the request `found`.
    async fn ask(
        &self,
        person: &Person,
        code: &UserCode,
        found: &DeviceAuthorization,
        client: &Client,
    ) -> Result<Response, Stop> {
        let (acting, grantable) = self.standing(person, found, client).await?;
        if grantable.is_empty() {
            self.refuse(person, found, client, "none of it is the person's to give")
                .await?;
            return Err(Stop::Page(
                StatusCode::FORBIDDEN,
                "Nothing this device asks for is yours to give: it was refused.".into(),
            ));
        }
        let shown = code.display();
        let csrf = consent::token(
            &self.consenting.key,
            self.now(),
            &person.binding,
            &consenting_to(&shown),
        );
        let capabilities = grantable.to_strings();
        let unavailable: Vec<String> = (found.requested.iter())
            .filter(|p| !grantable.covers(p))
            .map(|p| p.to_string())
            .collect();
        let owner = match &acting {
            Acting::Agent(agent) => agent.owner.as_str(),
            Acting::Connection(_) => person.user.as_str(),
        };
        let action = self.action();
        let site = document_host(client);
        let consent = Consent {
            chrome: Chrome::anonymous("Allow access", None),
            person: person.user.as_str(),
            client_name: &client.name,
            client_host: site.as_deref(),
            client_kind: kind_words(&client.kind),
            agent: acting.describe(),
            owner,
            redirect_host: None,
            user_code: Some(&shown),
            capabilities: &capabilities,
            unavailable: &unavailable,
            lifetime: lifetime_words(&self.authority),
            action: &action,
            hidden: vec![("user_code", shown.clone()), ("csrf", csrf)],
        };
        Ok(consent.response())
    }

    /// Records a refusal (the person's, or nothing to give), audited.
    async fn refuse(
        &self,
        person: &Person,
        found: &DeviceAuthorization,
        client: &Client,
        why: &str,
    ) -> Result<bool, Stop> {
        let now = self.authority.now();
        let backend = self.authority.store().backend();
        let stored = backend
            .decide_device(&found.denied(person.user.clone(), now), now)
            .await?;
        if stored {
            self.authority
                .record(
                    AuditEvent::new(now, AuditAction::ConsentRefused, Outcome::Denied)
                        .actor(person.user.clone())
                        .detail(format!("client {} (device): {why}", client.id)),
                )
                .await;
        }
        Ok(stored)
    }

    /// The consent form's answer.
    async fn decide(
        &self,
        person: &Person,
        params: &Params,
        ticked: &[String],
    ) -> Result<Response, Stop> {
        let expired = || {
            Stop::Page(
                StatusCode::BAD_REQUEST,
                "This request was answered already, or it has expired. Start again from your \
                 device."
                    .into(),
            )
        };
        let shown = params.get("user_code").unwrap_or_default();
        let csrf = params.get("csrf").unwrap_or_default();
        let code = UserCode::parse(shown).filter(|code| code.display() == shown);
        let bound = consent::verify(
            &self.consenting.key,
            csrf,
            self.now(),
            &person.binding,
            &consenting_to(shown),
        );
        let (Some(code), true) = (code, bound) else {
            let status = if bound {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            return Err(Stop::Page(
                status,
                "This consent form has expired or was not shown to you. Enter the code again."
                    .into(),
            ));
        };
        let Some((found, client)) = self.pending(&code).await? else {
            return Err(expired());
        };
        let (acting, grantable) = self.standing(person, &found, &client).await?;
        let granted: CapabilitySet = (grantable.to_strings().iter())
            .filter(|c| ticked.contains(c))
            .filter_map(|c| Capability::parse(c).ok())
            .collect();
        if params.get("decision") != Some("allow") || granted.is_empty() {
            if !self
                .refuse(person, &found, &client, "the person denied access")
                .await?
            {
                return Err(expired());
            }
            return Ok(done(
                "Access denied",
                "Your device will be told that you denied access. You can close this page.",
            ));
        }
        let server = &self.authority;
        let agent = match acting {
            Acting::Agent(agent) => agent,
            Acting::Connection(existing) => {
                connection_agent(server, &client, &person.user, existing, &granted).await?
            }
        };
        let now = server.now();
        let approved = found.approved(person.user.clone(), agent.id.clone(), granted.clone(), now);
        if !server
            .store()
            .backend()
            .decide_device(&approved, now)
            .await?
        {
            return Err(expired());
        }
        server.touch_client(&client).await;
        server
            .record(
                AuditEvent::new(now, AuditAction::DeviceApproved, Outcome::Success)
                    .agent(agent.id.clone())
                    .parent(agent.parent.clone())
                    .actor(person.user.clone())
                    .detail(format!(
                        "client {}, scope {}, resource {}",
                        client.id,
                        scope::to_scope(&granted),
                        found.resource.as_deref().unwrap_or("none"),
                    )),
            )
            .await;
        let seconds = found.interval.as_secs().max(self.flow.interval_secs());
        Ok(done(
            "Device connected",
            &format!(
                "{} may now act for you. Your device will receive access within about {seconds} \
                 seconds. You can close this page.",
                client.name
            ),
        ))
    }
}

/// A page that ends the flow.
fn done(title: &str, message: &str) -> Response {
    page::said(StatusCode::OK, title, message, "")
}

/// `templates/oauth_device.html`: the form where the person enters the device's code.
#[derive(Template)]
#[template(path = "oauth_device.html")]
struct Entry<'a> {
    chrome: Chrome,
    /// Who is signed in.
    person: &'a str,
    /// What went wrong with the last entry, or nothing.
    message: &'a str,
    action: String,
    /// The form's token, bound to the session and to the entry form.
    csrf: String,
    /// What was typed, given back.
    typed: String,
    max: usize,
}

async fn get_device<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    principal: Option<Principal>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return page::error(StatusCode::BAD_REQUEST, error.description()),
    };
    let typed = params.get("user_code");
    match endpoint.person(principal, &headers, typed) {
        Ok(person) => {
            let typed = typed.and_then(UserCode::parse).map(|code| code.display());
            endpoint.entry(
                StatusCode::OK,
                &person,
                typed.as_deref().unwrap_or_default(),
                "",
            )
        }
        Err(stop) => stop.into_response(),
    }
}

async fn post_device<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    principal: Option<Principal>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = Params::check_form(&headers, &body)
        .and_then(|()| Params::parse_with_list(&body, Some("capability")));
    let (params, ticked) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return page::error(StatusCode::BAD_REQUEST, error.description()),
    };
    let person = match endpoint.person(principal, &headers, None) {
        Ok(person) => person,
        Err(stop) => return stop.into_response(),
    };
    let answer = if params.get("decision").is_some() {
        endpoint.decide(&person, &params, &ticked).await
    } else {
        endpoint.enter(&person, address, &params).await
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `GET`/`POST /oauth/device`, with the pages' headers, and cross-site posts carrying the
/// session cookie refused.
pub(crate) fn router<B: Backend>(
    authority: Authority<B>,
    consenting: Consenting,
    flow: DeviceFlow,
) -> Router {
    let route = format!("{}{DEVICE}", authority.issuer().path());
    page::hardened(
        Router::new()
            .route(&route, get(get_device::<B>).post(post_device::<B>))
            .layer(SameOriginLayer::for_session_cookie().html())
            .with_state(Endpoint {
                authority,
                consenting: Arc::new(consenting),
                entries: Arc::new(WrongEntries::new(flow)),
                flow,
            }),
    )
}
