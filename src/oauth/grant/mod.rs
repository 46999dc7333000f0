//! The token endpoint's grants: one [`Grant`] each, found by its `grant_type`. A new grant (the
//! device code, token exchange, client credentials) is one more implementation handed to
//! [`AuthorizationServer::grant`], and touches none of these.

mod code;
mod refresh;

pub use code::AuthorizationCodeGrant;
pub use refresh::RefreshTokenGrant;

use super::client::Client;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::server::AuthorizationServer;
use super::token::TokenResponse;
use crate::store::Backend;

/// One grant of the token endpoint (RFC 6749 §4).
///
/// The endpoint authenticates the client first (`none`, `client_secret_basic`,
/// `client_secret_post`), then finds the grant by the request's `grant_type`, asks whether the
/// client may use it, and hands it the request.
#[async_trait::async_trait]
pub trait Grant<B: Backend>: Send + Sync + 'static {
    /// The `grant_type` it answers (`authorization_code`, or a URI for an extension grant).
    fn grant_type(&self) -> &'static str;

    /// Whether `client` may use it (else `unauthorized_client`). Every client by default.
    fn allows(&self, client: &Client) -> bool {
        let _ = client;
        true
    }

    /// Exchanges the request for tokens, for the authenticated `client`.
    async fn exchange(
        &self,
        server: &AuthorizationServer<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError>;
}

/// Finds the grant of `params`'s `grant_type` and runs it for `client`.
pub(crate) async fn dispatch<B: Backend>(
    server: &AuthorizationServer<B>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = params.require("grant_type")?;
    let grant = (server.inner.grants.iter())
        .find(|grant| grant.grant_type() == grant_type)
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "this server does not serve that grant_type",
            )
        })?;
    if !grant.allows(client) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use that grant_type",
        ));
    }
    grant.exchange(server, client, params).await
}
