//! The token endpoint's grants: one [`Grant`] each, found by its `grant_type`:
//! `authorization_code`, `refresh_token` and the device code (RFC 8628). A new grant (token
//! exchange, client credentials) is one more implementation handed to
//! [`AuthorizationServer::grant`](super::AuthorizationServer::grant), and touches none of
//! these.

mod code;
mod credentials;
mod device;
mod exchange;
mod refresh;

pub use code::AuthorizationCodeGrant;
pub use credentials::ClientCredentialsGrant;
pub use device::{DEVICE_CODE, DeviceCodeGrant};
pub use exchange::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, TokenExchangeGrant};
pub use refresh::RefreshTokenGrant;

use std::sync::Arc;

use super::authority::Authority;
use super::client::Client;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::response::TokenResponse;
use crate::store::Backend;

/// One grant of the token endpoint (RFC 6749 §4).
///
/// The endpoint authenticates the client first (`none`, `client_secret_basic`,
/// `client_secret_post`), then finds the grant by the request's `grant_type`, asks whether the
/// client may use it, and hands it the request. Issuing goes through the [`Authority`]'s
/// [`mint_access`](Authority::mint_access), so every grant's tokens are alike.
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
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError>;
}

/// The grants a token endpoint serves, by `grant_type`. Cheap to clone.
pub(crate) struct Grants<B> {
    grants: Arc<[Arc<dyn Grant<B>>]>,
}

impl<B> Clone for Grants<B> {
    fn clone(&self) -> Self {
        Self {
            grants: self.grants.clone(),
        }
    }
}

impl<B: Backend> Grants<B> {
    /// `authorization_code`, `refresh_token`, token exchange, `client_credentials` and the
    /// device code.
    pub(crate) fn standard() -> Self {
        Self {
            grants: Arc::new([
                Arc::new(AuthorizationCodeGrant) as Arc<dyn Grant<B>>,
                Arc::new(RefreshTokenGrant),
                Arc::new(TokenExchangeGrant),
                Arc::new(ClientCredentialsGrant),
                Arc::new(DeviceCodeGrant),
            ]),
        }
    }

    /// With `grant` added, in place of the one of its `grant_type`.
    pub(crate) fn with(&self, grant: Arc<dyn Grant<B>>) -> Self {
        let mut grants: Vec<_> = (self.grants.iter())
            .filter(|g| g.grant_type() != grant.grant_type())
            .cloned()
            .collect();
        grants.push(grant);
        Self {
            grants: grants.into(),
        }
    }

    /// Without the grant of `grant_type` (none served for it).
    pub(crate) fn without(&self, grant_type: &str) -> Self {
        let grants: Vec<_> = (self.grants.iter())
            .filter(|g| g.grant_type() != grant_type)
            .cloned()
            .collect();
        Self {
            grants: grants.into(),
        }
    }

    /// The grant types served.
    pub(crate) fn types(&self) -> Vec<&'static str> {
        self.grants.iter().map(|g| g.grant_type()).collect()
    }

    /// Finds the grant of `params`'s `grant_type` and runs it for `client`.
    pub(crate) async fn dispatch(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params.require("grant_type")?;
        let grant = (self.grants.iter())
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
        grant.exchange(authority, client, params).await
    }
}
