//! An authorization request (RFC 6749 §4.1.1), checked in the order that decides where an
//! answer may go: the client and its redirect URI first — until both hold, every answer is a
//! page, never a redirect (an open redirector otherwise) — then the request's own parameters,
//! whose errors go back to the client with `error`, `state` and `iss`.

use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::LOCATION;

use super::authority::Authority;
use super::client::{Client, ClientKind};
use super::error::OAuthError;
use super::page;
use super::params::Params;
use super::pkce;
use super::redirect::{RedirectPattern, RedirectUri, allowed};
use super::scope;
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::store::Backend;

/// The request's parameters the consent form carries and its token binds, in this order.
pub(crate) const FIELDS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "scope",
];

/// How an authorization request ends early.
pub(crate) enum Stop {
    /// A page: the client or its redirect URI is not to be trusted, or the person may not.
    Page(StatusCode, String),
    /// A redirect: back to the client with `error` (its redirect URI is checked), or to the
    /// sign-in page.
    Redirect(String),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "oauth: authorize failed on the store");
        Self::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server cannot answer now. Try again in a moment.".into(),
        )
    }
}

impl From<OAuthError> for Stop {
    fn from(error: OAuthError) -> Self {
        Self::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            error.description().to_owned(),
        )
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Self::Page(status, message) => page::error(status, &message),
            Self::Redirect(location) => found(location),
        }
    }
}

/// `302 Found` to `location`.
pub(crate) fn found(location: String) -> Response {
    (StatusCode::FOUND, [(LOCATION, location)]).into_response()
}

/// `redirect_uri` with `pairs` added to its query.
pub(crate) fn back(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    // Redirect URIs carry no fragment (checked), so the query is the end of the string.
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

/// A checked authorization request.
pub(crate) struct Request {
    pub(crate) params: Params,
    pub(crate) client: Client,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_host: String,
    pub(crate) challenge: String,
    pub(crate) resource: Option<String>,
    pub(crate) requested: CapabilitySet,
}

impl Request {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The fields the consent token binds.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Option<&str>)> {
        FIELDS.iter().map(|name| (*name, self.get(name))).collect()
    }

    /// Back to the client with an error, `state` and `iss`.
    pub(crate) fn error<B: Backend>(&self, server: &Authority<B>, code: &str, why: &str) -> Stop {
        let mut pairs = vec![("error", code), ("error_description", why)];
        if let Some(state) = self.get("state") {
            pairs.push(("state", state));
        }
        pairs.push(("iss", server.issuer().as_str()));
        Stop::Redirect(back(&self.redirect_uri, &pairs))
    }
}

/// Whether `client` may be sent back to `uri`: for a registered agent, one of its allowlist's
/// patterns allows it; for another client, it is one of its redirect URIs (an http loopback one
/// on any port, RFC 8252).
fn redirect_allowed(client: &Client, uri: &RedirectUri) -> bool {
    let patterns: Vec<RedirectPattern> = match client.kind {
        ClientKind::Agent(_) => (client.redirect_uris.iter())
            .filter_map(|p| RedirectPattern::parse(p).ok())
            .collect(),
        _ => (client.redirect_uris.iter())
            .filter_map(|u| RedirectUri::parse(u).ok())
            .map(|u| RedirectPattern::exact(&u))
            .collect(),
    };
    allowed(&patterns, uri)
}

/// Checks the client and its redirect URI (errors are pages), then the request (errors go
/// back to the client).
pub(crate) async fn check<B: Backend>(
    server: &Authority<B>,
    mut params: Params,
) -> Result<Request, Stop> {
    let bad = |message: &str| Stop::Page(StatusCode::BAD_REQUEST, message.to_owned());
    // `agent_slug` is the client id of a registered agent, under another name.
    let client_id = match (params.get("client_id"), params.get("agent_slug")) {
        (Some(id), None) => id.to_owned(),
        (None, Some(slug)) => slug.to_owned(),
        (Some(id), Some(slug)) if id == slug => id.to_owned(),
        (Some(_), Some(_)) => return Err(bad("client_id and agent_slug name different clients.")),
        (None, None) => return Err(bad("The request names no client (client_id).")),
    };
    params = params.with("client_id", &client_id).without("agent_slug");
    // An https client_id is read from its metadata document, when they are accepted.
    let client = match server.live_client(&client_id).await? {
        Ok(client) => client,
        Err(unfound) => {
            let (status, message) = unfound.page();
            return Err(Stop::Page(status, message));
        }
    };
    let uri = params
        .get("redirect_uri")
        .ok_or_else(|| bad("The request names no redirect_uri."))?;
    let uri = RedirectUri::parse(uri)
        .map_err(|error| bad(&format!("The request's redirect_uri is refused: {error}.")))?;
    if !redirect_allowed(&client, &uri) {
        return Err(bad(
            "The redirect_uri is not one this application registered: you will not be sent there.",
        ));
    }
    let mut request = Request {
        redirect_uri: uri.as_str().to_owned(),
        redirect_host: uri.host().to_owned(),
        params,
        client,
        challenge: String::new(),
        resource: None,
        requested: CapabilitySet::empty(),
    };
    if request.get("response_type") != Some("code") {
        return Err(request.error(
            server,
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = request.get("code_challenge");
    if let Err(error) = pkce::check_challenge(challenge, request.get("code_challenge_method")) {
        return Err(request.error(server, "invalid_request", &error.to_string()));
    }
    request.challenge = challenge.unwrap_or_default().to_owned();
    request.resource = match server.target(request.get("resource")) {
        Ok(resource) => resource,
        Err(why) => return Err(request.error(server, "invalid_target", why)),
    };
    let asked = request
        .get("scope")
        .or(request.client.scope.as_deref())
        .map(scope::parse)
        .transpose()
        .map(Option::flatten);
    let default = || {
        scope::parse(&server.scopes_supported().join(" "))
            .ok()
            .flatten()
    };
    request.requested = match asked {
        Ok(Some(set)) => set,
        Ok(None) => match default() {
            Some(set) => set,
            None => return Err(request.error(server, "invalid_scope", "scope is required")),
        },
        Err(error) => return Err(request.error(server, "invalid_scope", &error.to_string())),
    };
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_keeps_the_uri_and_adds_the_pairs() {
        let location = back(
            "http://127.0.0.1:9/cb?x=1",
            &[("code", "a b"), ("iss", "https://i")],
        );
        assert_eq!(
            location,
            "http://127.0.0.1:9/cb?x=1&code=a+b&iss=https%3A%2F%2Fi"
        );
        let location = back("https://app.example/cb", &[("error", "access_denied")]);
        assert_eq!(location, "https://app.example/cb?error=access_denied");
        let response = found(location);
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers()[LOCATION],
            "https://app.example/cb?error=access_denied"
        );
    }

    #[test]
    fn registered_clients_match_exactly_and_agents_by_pattern() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut client = Client::new("c_1", ClientKind::Registered, "x", now);
        client.redirect_uris = vec!["http://127.0.0.1:3000/cb".into()];
        let uri = |u| RedirectUri::parse(u).unwrap();
        assert!(redirect_allowed(&client, &uri("http://127.0.0.1:3000/cb")));
        assert!(redirect_allowed(&client, &uri("http://127.0.0.1:4000/cb")));
        assert!(!redirect_allowed(
            &client,
            &uri("http://127.0.0.1:3000/cb/x")
        ));
        let mut agent = Client::new("writer", ClientKind::Agent("a1".into()), "w", now);
        agent.redirect_uris = vec!["https://app.example/oauth/*".into()];
        assert!(redirect_allowed(
            &agent,
            &uri("https://app.example/oauth/done")
        ));
        assert!(!redirect_allowed(
            &agent,
            &uri("https://app.example.evil/oauth/done")
        ));
    }
}
