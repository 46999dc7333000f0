//! Client authentication at the token, introspection and revocation endpoints: `none`
//! (`client_id` in the body), `client_secret_basic` (both halves percent-decoded) and
//! `client_secret_post`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::client::{Client, ClientAuth};
use super::error::OAuthError;
use super::params::Params;
use crate::store::{Backend, Store};
use crate::token::TokenHash;

/// The credentials a request presented, read but not yet checked.
pub(crate) struct Presented {
    /// The `client_id`.
    pub(crate) id: String,
    /// The secret, if one was sent.
    secret: Option<Zeroizing<String>>,
    /// How they came.
    pub(crate) method: ClientAuth,
}

impl Presented {
    /// The hash of the secret sent, if one was: what a client authenticated recently is
    /// remembered by, never the secret.
    pub(crate) fn secret_hash(&self) -> Option<TokenHash> {
        self.secret.as_deref().map(|secret| TokenHash::of(secret))
    }
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// One half of a Basic credential: `application/x-www-form-urlencoded`, as RFC 6749 §2.3.1
/// asks (`+` is a space), so that clients that encode (`oauth4webapi` encodes `-`, `_`, `.`)
/// and those that send raw values agree.
fn form_decoded(half: &str) -> Option<String> {
    let spaced = half.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// `(id, secret)` of an `Authorization: Basic` header; `Ok(None)` when there is none (or it is
/// another scheme); `Err` when it is Basic but unreadable.
fn basic(headers: &HeaderMap) -> Result<Option<(String, Zeroizing<String>)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let unreadable =
        || OAuthError::invalid_client("unreadable Basic credentials").with_basic_challenge();
    let value = value.to_str().map_err(|_| unreadable())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| unreadable())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| unreadable())?;
    let (id, secret) = text.split_once(':').ok_or_else(unreadable)?;
    let id = form_decoded(id).ok_or_else(unreadable)?;
    let secret = Zeroizing::new(form_decoded(secret).ok_or_else(unreadable)?);
    Ok(Some((id, secret)))
}

/// Reads the client's credentials from the `Authorization` header or the form. Refuses two
/// methods at once (RFC 6749 §2.3), a body `client_id` that is not the Basic one, and a
/// request naming no client.
pub(crate) fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    if let Some((id, secret)) = basic(headers)? {
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (Basic and client_secret)",
            ));
        }
        if params.get("client_id").is_some_and(|body| body != id) {
            return Err(
                OAuthError::invalid_client("client_id differs from the Basic credentials")
                    .with_basic_challenge(),
            );
        }
        return Ok(Presented {
            id,
            secret: Some(secret),
            method: ClientAuth::SecretBasic,
        });
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    let secret = params
        .get("client_secret")
        .map(|s| Zeroizing::new(s.to_owned()));
    Ok(Presented {
        id: id.to_owned(),
        method: if secret.is_some() {
            ClientAuth::SecretPost
        } else {
            ClientAuth::None
        },
        secret,
    })
}

/// Checks presented credentials: a live client, and for a confidential one its secret
/// (compared as SHA-256 hashes, in constant time). A public client may not present a secret.
/// Every failure is `invalid_client`, with a Basic challenge when Basic was tried.
pub(crate) async fn authenticate<B: Backend>(
    store: &Store<B>,
    presented: &Presented,
    now: OffsetDateTime,
) -> Result<Client, OAuthError> {
    let refuse = |why: &str| {
        let error = OAuthError::invalid_client(why);
        if presented.method == ClientAuth::SecretBasic {
            error.with_basic_challenge()
        } else {
            error
        }
    };
    let client = store
        .backend()
        .client(&presented.id)
        .await
        .map_err(OAuthError::from)?
        .filter(|client| client.is_live_at(now))
        .ok_or_else(|| refuse("unknown client"))?;
    match (&client.secret_hash, &presented.secret) {
        (Some(hash), Some(secret)) if TokenHash::of(secret) == *hash => Ok(client),
        (Some(_), _) => Err(refuse("client authentication failed")),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(refuse("a public client has no secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    fn basic_of(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn both_halves_are_percent_decoded() {
        let encoded = basic_of("c%5Fab%2Dc", "s%2Ex%3Ay+z");
        let presented = presented(&headers(&encoded), &Params::default()).unwrap();
        assert_eq!(presented.id, "c_ab-c");
        assert_eq!(
            presented.secret.as_deref().map(String::as_str),
            Some("s.x:y z")
        );
        assert_eq!(presented.method, ClientAuth::SecretBasic);
        // Raw values read the same.
        let raw = presented_id(&basic_of("c_ab-c", "s"));
        assert_eq!(raw, "c_ab-c");
    }

    fn presented_id(authorization: &str) -> String {
        presented(&headers(authorization), &Params::default())
            .unwrap()
            .id
    }

    #[test]
    fn a_matching_body_client_id_is_fine_and_another_is_not() {
        let auth = headers(&basic_of("c_1", "s"));
        assert!(presented(&auth, &Params::parse(b"client_id=c_1").unwrap()).is_ok());
        let error = presented(&auth, &Params::parse(b"client_id=c_2").unwrap()).unwrap_err();
        assert_eq!(error.code(), super::super::error::ErrorCode::InvalidClient);
        let error = presented(&auth, &Params::parse(b"client_secret=s").unwrap()).unwrap_err();
        assert_eq!(error.code(), super::super::error::ErrorCode::InvalidRequest);
    }

    #[test]
    fn the_body_methods() {
        let none = presented(&HeaderMap::new(), &Params::parse(b"client_id=c_1").unwrap());
        assert_eq!(none.unwrap().method, ClientAuth::None);
        let post = Params::parse(b"client_id=c_1&client_secret=s").unwrap();
        assert_eq!(
            presented(&HeaderMap::new(), &post).unwrap().method,
            ClientAuth::SecretPost
        );
        // A bearer header is not client authentication.
        let bearer = presented(&headers("Bearer x"), &Params::default()).unwrap_err();
        assert_eq!(bearer.code(), super::super::error::ErrorCode::InvalidClient);
        assert!(presented(&headers("Basic !!!"), &Params::default()).is_err());
    }
}
