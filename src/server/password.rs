use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};

use crate::principal::UserId;
use crate::reason::BoxError;

/// Checks a user's password; the login route asks it.
#[async_trait::async_trait]
pub trait PasswordVerifier: Send + Sync + 'static {
    /// The user, if `password` is theirs and they are active; `None` for any mismatch (an
    /// unknown user and a wrong password are not told apart).
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError>;
}

/// An Argon2id hash of `password` in PHC string form, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, BoxError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string())
}

/// Whether `password` matches `hash` (a PHC string from [`hash_password`]). A malformed hash
/// matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }
}
