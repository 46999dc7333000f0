//! The provider's side, through the `oauth2` crate: the authorization request (PKCE S256, the
//! `state`, the scopes) and the code's exchange at the token endpoint, server-side, with the
//! verifier and this application's client secret. HTTP goes through `reqwest` (HTTP/1.1,
//! rustls): no redirect followed, a time limit, an answer of at most [`MAX_ANSWER`] bytes.
//! Nothing here logs, and no error carries the provider's answer (which may hold a token).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use zeroize::Zeroizing;

use super::provider::{Provider, SecretIn};

/// The most bytes read of a token endpoint's answer.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// The HTTP client the receiver calls token endpoints with: no redirects (a token endpoint
/// that redirects is refused, and the client secret never follows it elsewhere), 10 s at most.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SendError(&'static str);

/// Sends `request` with `client`, reading at most [`MAX_ANSWER`] bytes of the answer.
async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, SendError> {
    let request = reqwest::Request::try_from(request).map_err(|_| SendError("a bad request"))?;
    let mut answer = client
        .execute(request)
        .await
        .map_err(|_| SendError("the token endpoint could not be reached"))?;
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|_| SendError("the token endpoint's answer was cut short"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(SendError("the token endpoint's answer is too long"));
        }
        body.extend_from_slice(&chunk);
    }
    let mut response = http::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    response
        .body(body.to_vec())
        .map_err(|_| SendError("a bad answer"))
}

/// The HTTP client as `oauth2` calls it: a named type, so that the exchange's future is `Send`
/// for every lifetime (a closure's is not, to the compiler).
struct Http<'a>(&'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http<'_> {
    type Error = SendError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, SendError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

/// What the authorization request needs: the URL to send the person to, and the verifier to
/// keep (sealed) until the callback.
pub(crate) struct Authorization {
    pub(crate) url: String,
    pub(crate) verifier: Zeroizing<String>,
}

/// The authorization request to `provider`, carrying `state`.
pub(crate) fn authorization(provider: &Provider, state: &str) -> Authorization {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(provider.authorize_url.clone()))
        .set_redirect_uri(RedirectUrl::from_url(provider.redirect_uri.clone()));
    let state = state.to_owned();
    let (url, _) = client
        .authorize_url(|| CsrfToken::new(state))
        .add_scopes(provider.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    Authorization {
        url: url.into(),
        verifier: Zeroizing::new(verifier.into_secret()),
    }
}

/// The tokens a provider answered with: kept only long enough to seal them.
pub(crate) struct Received {
    pub(crate) access: Zeroizing<String>,
    pub(crate) refresh: Option<Zeroizing<String>>,
    pub(crate) token_type: String,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) expires_in: Option<Duration>,
}

/// Why a code was not exchanged, in words safe for a page and the audit trail.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

/// Exchanges `code` at `provider`'s token endpoint with `verifier`.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    provider: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Received, Refused> {
    let mut oauth = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(provider.token_url.clone()))
        .set_redirect_uri(RedirectUrl::from_url(provider.redirect_uri.clone()))
        .set_auth_type(match provider.secret_in {
            SecretIn::Basic => AuthType::BasicAuth,
            SecretIn::Body => AuthType::RequestBody,
        });
    if let Some(secret) = &provider.client_secret {
        oauth = oauth.set_client_secret(ClientSecret::new(secret.to_string()));
    }
    let http = Http(client);
    let answer = oauth
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .request_async(&http)
        .await
        .map_err(|error| {
            Refused(match error {
                RequestTokenError::ServerResponse(answer) => {
                    // The provider's word, cut to a short run of printable characters.
                    let code: String = answer
                        .error()
                        .to_string()
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(40)
                        .collect();
                    format!("the provider refused the code: {code}")
                }
                RequestTokenError::Request(error) => error.to_string(),
                RequestTokenError::Parse(..) => "the provider's answer is not a token".to_owned(),
                RequestTokenError::Other(_) => "the provider's answer is not a token".to_owned(),
            })
        })?;
    Ok(Received {
        access: Zeroizing::new(answer.access_token().secret().clone()),
        refresh: answer
            .refresh_token()
            .map(|t| Zeroizing::new(t.secret().clone())),
        token_type: answer.token_type().as_ref().to_owned(),
        scopes: answer
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
        expires_in: answer.expires_in(),
    })
}
