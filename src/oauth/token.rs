//! The token endpoint, `POST /oauth/token`: the client authenticates, then the grant of the
//! request's `grant_type` answers (see [`Grant`](super::Grant)).

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::State;
use ::axum::routing::post;
use http::HeaderMap;

use super::authority::Authority;
use super::client_auth::{authenticate, presented};
use super::error::OAuthError;
use super::grant::Grants;
use super::params::Params;
use super::response::TokenResponse;
use super::routes::{TOKEN, cors};
use crate::store::Backend;

/// The endpoint's state: the authority and the grants.
struct Endpoint<B> {
    authority: Authority<B>,
    grants: Grants<B>,
}

impl<B> Clone for Endpoint<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            grants: self.grants.clone(),
        }
    }
}

async fn token<B: Backend>(
    State(endpoint): State<Endpoint<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<TokenResponse, OAuthError> {
    let authority = &endpoint.authority;
    let params = Params::from_form(&headers, &body)?;
    let presented = presented(&headers, &params)?;
    let client = authenticate(authority.store(), &presented, authority.now()).await?;
    // A metadata document's client is what its document says now.
    let client = authority.current_client(client).await?;
    let answer = endpoint
        .grants
        .dispatch(authority, &client, &params)
        .await?;
    authority.touch_client(&client).await;
    Ok(answer)
}

/// `POST /oauth/token`, answering with `grants`.
pub(crate) fn router<B: Backend>(authority: Authority<B>, grants: Grants<B>) -> Router {
    let route = format!("{}{TOKEN}", authority.issuer().path());
    Router::new()
        .route(&route, post(token::<B>))
        .layer(cors())
        .with_state(Endpoint { authority, grants })
}
