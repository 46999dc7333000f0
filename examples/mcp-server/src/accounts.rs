//! [`Accounts`]: the people who sign in to consent to an MCP client, held in memory. A real
//! application has its own user table; the library needs it as a `UserDirectory` (whose
//! agents may do what) and a `PasswordVerifier` (who signs in).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::error::BoxError;
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{
    PasswordVerifier, hash_password_off_runtime, verify_password_off_runtime,
};
use tower_agent_auth::store::{MemoryUserDirectory, UserRecord};

/// Users, their roles, and Argon2 hashes of their passwords. Cheap to clone.
#[derive(Clone, Default)]
pub struct Accounts {
    directory: MemoryUserDirectory,
    hashes: Arc<RwLock<HashMap<UserId, String>>>,
}

impl Accounts {
    /// No one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The users and their roles, for the store: an agent never exceeds its owner's role.
    pub fn directory(&self) -> MemoryUserDirectory {
        self.directory.clone()
    }

    /// Adds (or replaces) a user who signs in with `password` and whose agents may do at most
    /// what `role` allows.
    pub async fn add(&self, id: &str, role: Policy, password: &str) -> Result<(), BoxError> {
        let hash = hash_password_off_runtime(password.to_owned()).await?;
        self.hashes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(UserId::from(id), hash);
        self.directory.insert(UserRecord::new(id, role));
        Ok(())
    }
}

/// A password to print once: 24 hex digits of the system's randomness.
pub fn random_password() -> Result<String, BoxError> {
    let mut secret = [0u8; 12];
    getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
    Ok(hex::encode(secret))
}

#[tower_agent_auth::async_trait]
impl PasswordVerifier for Accounts {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError> {
        // An unknown name costs one Argon2 verification too: timing does not tell who exists.
        static UNKNOWN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let id = UserId::from(user);
        let known = self
            .hashes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        let hash = match &known {
            Some(hash) => hash.clone(),
            None => UNKNOWN
                .get_or_try_init(|| hash_password_off_runtime("no one's password".to_owned()))
                .await?
                .clone(),
        };
        let matches = verify_password_off_runtime(hash, password.to_owned()).await?;
        Ok((known.is_some() && matches).then_some(id))
    }
}
