//! Metadata documents: the authorization server's (RFC 8414) and a protected resource's
//! (RFC 9728). Served with 200 JSON, never a redirect, with CORS for browser-based clients.

use ::axum::Router;
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};

use super::authority::Authority;
use super::error::no_store_json;
use super::routes::{AUTHORIZE, DEVICE_AUTHORIZATION, INTROSPECT, REGISTER, REVOKE, TOKEN, cors};
use crate::store::Backend;

const AS_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";
const PRM_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The authorization server's metadata document (RFC 8414 §2), with the token endpoint's
/// `grant_types`: every field real clients require, none for an endpoint that is not served.
pub(crate) fn document<B: Backend>(authority: &Authority<B>, grant_types: &[&str]) -> Value {
    let issuer = authority.issuer();
    let mut document = json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint(AUTHORIZE),
        "token_endpoint": issuer.endpoint(TOKEN),
        "registration_endpoint": issuer.endpoint(REGISTER),
        "introspection_endpoint": issuer.endpoint(INTROSPECT),
        "revocation_endpoint": issuer.endpoint(REVOKE),
        "device_authorization_endpoint": issuer.endpoint(DEVICE_AUTHORIZATION),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported":
            ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported":
            ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": authority.scopes_supported(),
        "authorization_response_iss_parameter_supported": true,
    });
    if authority.metadata_documents_supported() {
        document["client_id_metadata_document_supported"] = Value::Bool(true);
    }
    document
}

/// Not an OpenID provider: the discovery document is a JSON 404, so clients stop there.
async fn not_openid() -> Response {
    no_store_json(
        StatusCode::NOT_FOUND,
        json!({
            "error": "not_found",
            "error_description": "this server is an OAuth 2.1 authorization server, not an OpenID provider",
        }),
    )
}

/// `/.well-known/oauth-authorization-server` (and its issuer-path variant), the OpenID
/// discovery 404s.
pub(crate) fn router<B: Backend>(authority: &Authority<B>, grant_types: &[&str]) -> Router {
    let document = document(authority, grant_types);
    let serve = move || {
        let document = document.clone();
        async move { ::axum::Json(document).into_response() }
    };
    let path = authority.issuer().path().to_owned();
    let mut router = Router::new()
        .route(AS_WELL_KNOWN, get(serve.clone()))
        .route(OPENID_WELL_KNOWN, get(not_openid));
    if !path.is_empty() {
        // RFC 8414 §3.1 inserts the well-known segment before the issuer's path; OpenID
        // discovery appends it after, and clients try both.
        router = router
            .route(&format!("{AS_WELL_KNOWN}{path}"), get(serve))
            .route(&format!("{OPENID_WELL_KNOWN}{path}"), get(not_openid))
            .route(&format!("{path}{OPENID_WELL_KNOWN}"), get(not_openid));
    }
    router.layer(cors())
}

/// Why a resource identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// Not an absolute `https` or `http` URL.
    #[error("a resource must be an absolute https (or http) URL")]
    NotAUrl,
    /// It has a fragment (RFC 8707 §2).
    #[error("a resource may not have a fragment")]
    Fragment,
}

/// A protected resource's metadata (RFC 9728), served by [`ProtectedResource::router`] at
/// `/.well-known/oauth-protected-resource` and at the path-suffixed URI
/// (`/.well-known/oauth-protected-resource/mcp` for `https://api.example.com/mcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    resource: String,
    path: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    at_root: bool,
}

impl ProtectedResource {
    /// The metadata of `resource` (exactly the URL clients are given), whose tokens come from
    /// the authorization server `issuer` (its canonical string).
    pub fn new(resource: &str, issuer: impl Into<String>) -> Result<Self, ResourceError> {
        let url = url::Url::parse(resource).map_err(|_| ResourceError::NotAUrl)?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(ResourceError::NotAUrl);
        }
        if url.fragment().is_some() {
            return Err(ResourceError::Fragment);
        }
        Ok(Self {
            resource: resource.to_owned(),
            path: url.path().trim_end_matches('/').to_owned(),
            authorization_servers: vec![issuer.into()],
            scopes_supported: Vec::new(),
            at_root: true,
        })
    }

    /// The scopes advertised (clients ask for every one: list the baseline only).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the router also serves the root `/.well-known/oauth-protected-resource` (yes
    /// by default); an application with several resources serves the root for one of them.
    pub fn at_root(mut self, at_root: bool) -> Self {
        self.at_root = at_root;
        self
    }

    /// The URL of the path-suffixed document: what a layer's `resource_metadata=` names.
    pub fn metadata_url(&self) -> String {
        let url = url::Url::parse(&self.resource).ok();
        let origin = url.map_or_else(String::new, |u| u.origin().ascii_serialization());
        format!("{origin}{PRM_WELL_KNOWN}{}", self.path)
    }

    /// The document.
    pub fn document(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    /// The routes serving the document.
    pub fn router(&self) -> Router {
        let document = self.document();
        let serve = move || {
            let document = document.clone();
            async move { ::axum::Json(document).into_response() }
        };
        let mut router = Router::new();
        if self.at_root || self.path.is_empty() {
            router = router.route(PRM_WELL_KNOWN, get(serve.clone()));
        }
        if !self.path.is_empty() {
            router = router.route(&format!("{PRM_WELL_KNOWN}{}", self.path), get(serve));
        }
        router.layer(cors())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_is_path_suffixed() {
        let prm =
            ProtectedResource::new("http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080").unwrap();
        assert_eq!(
            prm.metadata_url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(prm.document()["resource"], "http://127.0.0.1:8080/mcp");
        assert_eq!(prm.document()["bearer_methods_supported"][0], "header");
        assert_eq!(
            ProtectedResource::new("https://e.com/#x", "https://e.com"),
            Err(ResourceError::Fragment)
        );
        assert_eq!(
            ProtectedResource::new("urn:x", "https://e.com"),
            Err(ResourceError::NotAUrl)
        );
    }
}
