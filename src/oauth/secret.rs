//! Random identifiers and secrets: client ids and secrets, codes, refresh tokens, family ids.
//!
//! Every one is drawn from the operating system's CSPRNG and written in `[A-Za-z0-9_-]`
//! (base64url without padding), so that a value percent-encoded by one client and sent raw by
//! another decodes the same, and none needs escaping in a form or a URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::error::OAuthError;
use crate::token::TokenHash;

/// `n` random bytes in base64url.
pub(crate) fn random(bytes: usize) -> Result<String, OAuthError> {
    let mut buffer = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buffer).map_err(|error| OAuthError::unavailable(&error))?;
    Ok(URL_SAFE_NO_PAD.encode(&*buffer))
}

/// A client id: `c_` and 128 random bits. Never an agent's slug, which has no `_`.
pub(crate) fn client_id() -> Result<String, OAuthError> {
    Ok(format!("c_{}", random(16)?))
}

/// A secret (a client secret, a code, a refresh token): 256 random bits, with a prefix naming
/// what it is, so that one pasted in the wrong place is recognised.
pub(crate) fn secret(prefix: &str) -> Result<Secret, OAuthError> {
    Ok(Secret(Zeroizing::new(format!("{prefix}{}", random(32)?))))
}

/// A secret shown once: its text is wiped when dropped, and its `Debug` shows nothing of it.
pub(crate) struct Secret(Zeroizing<String>);

impl Secret {
    /// The secret, to hand to its holder.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The prefix of client secrets.
pub(crate) const CLIENT_SECRET: &str = "cs_";
/// The prefix of authorization codes.
pub(crate) const CODE: &str = "ac_";
/// The prefix of refresh tokens.
pub(crate) const REFRESH: &str = "rt_";

#[cfg(test)]
mod tests {
    use super::*;

    fn url_safe(text: &str) -> bool {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn ids_and_secrets_are_url_safe_and_distinct() {
        let id = client_id().unwrap();
        assert!(
            id.starts_with("c_") && id.len() == 24 && url_safe(&id),
            "{id}"
        );
        let a = secret(REFRESH).unwrap();
        let b = secret(REFRESH).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 3 + 43);
        assert!(url_safe(a.expose()));
        assert_eq!(format!("{a:?}"), "Secret(…)");
        assert_eq!(a.hash(), TokenHash::of(a.expose()));
    }
}
