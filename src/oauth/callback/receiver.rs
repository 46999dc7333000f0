//! [`CallbackReceiver`]: the configuration (store, key, providers, audit, session cookie), the
//! router, and the one way the application reads a kept token back.

use std::time::Duration;

use zeroize::Zeroizing;

use super::exchange;
use super::provider::{Provider, ProviderError};
use super::record::ProviderToken;
use super::seal::{CallbackKey, SealError};
use crate::audit::{AuditEvent, AuditWriter};
use crate::error::StoreError;
use crate::server::SESSION_COOKIE;
use crate::store::{Backend, Store};

/// The longest a pending authorization may wait for its callback.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The callback receiver: see the [module docs](super). Cheap to clone.
pub struct CallbackReceiver<B> {
    pub(crate) store: Store<B>,
    pub(crate) key: CallbackKey,
    pub(crate) providers: Vec<Provider>,
    pub(crate) audit: Option<AuditWriter>,
    pub(crate) session_cookie: String,
    pub(crate) lifetime: Duration,
    pub(crate) http: reqwest::Client,
    pub(crate) sign_in: String,
}

impl<B> Clone for CallbackReceiver<B> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            key: self.key.clone(),
            providers: self.providers.clone(),
            audit: self.audit.clone(),
            session_cookie: self.session_cookie.clone(),
            lifetime: self.lifetime,
            http: self.http.clone(),
            sign_in: self.sign_in.clone(),
        }
    }
}

impl<B> std::fmt::Debug for CallbackReceiver<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("providers", &self.providers)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A kept token, opened: for the application to call the provider with. `Debug` shows no
/// secret; the secrets are wiped when it is dropped.
pub struct Credentials {
    /// The record, metadata and sealed values.
    pub token: ProviderToken,
    access: Zeroizing<String>,
    refresh: Option<Zeroizing<String>>,
}

impl Credentials {
    /// The access token.
    pub fn access_token(&self) -> &str {
        &self.access
    }

    /// The refresh token, if the provider gave one.
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh.as_deref().map(String::as_str)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Why a kept token could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It was sealed under another key (or altered).
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl<B: Backend> CallbackReceiver<B> {
    /// A receiver over `store`, sealing with `key`, with no provider yet, pending
    /// authorizations of 10 minutes, the session cookie [`SESSION_COOKIE`], sign-in at
    /// `/login` and no audit trail.
    pub fn new(store: Store<B>, key: CallbackKey) -> Self {
        Self {
            store,
            key,
            providers: Vec::new(),
            audit: None,
            session_cookie: SESSION_COOKIE.to_owned(),
            lifetime: Duration::from_secs(600),
            http: exchange::http_client(),
            sign_in: "/login".to_owned(),
        }
    }

    /// Adds a provider. Refused if its name or its redirect URI's path is another's, or if
    /// that path is of the shape of the start (`/connect/<one segment>`).
    pub fn provider(mut self, provider: Provider) -> Result<Self, ProviderError> {
        for known in &self.providers {
            if known.name == provider.name {
                return Err(ProviderError::new(&provider.name, "named twice"));
            }
            if known.redirect_uri.path() == provider.redirect_uri.path() {
                return Err(ProviderError::new(
                    &provider.name,
                    format!("redirect_uri: its path is {}'s", known.name),
                ));
            }
        }
        let path = provider.redirect_uri.path();
        let start_like = path
            .strip_prefix("/connect/")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if start_like {
            return Err(ProviderError::new(
                &provider.name,
                "redirect_uri: /connect/<name> is where connections start; use /connect/<name>/callback",
            ));
        }
        self.providers.push(provider);
        Ok(self)
    }

    /// Records starts, connections, refused callbacks and disconnections in the audit trail.
    pub fn audit(mut self, writer: AuditWriter) -> Self {
        self.audit = Some(writer);
        self
    }

    /// The cookie of the sessions people sign in with ([`SESSION_COOKIE`] by default): a
    /// callback must carry the same one as the start.
    pub fn session_cookie(mut self, name: impl Into<String>) -> Self {
        self.session_cookie = name.into();
        self
    }

    /// The sign-in page a person who is not signed in is sent to from the start's page
    /// (`/login` by default), with `?return=` the page.
    pub fn sign_in_path(mut self, path: impl Into<String>) -> Self {
        self.sign_in = path.into();
        self
    }

    /// How long a pending authorization waits for its callback (10 minutes by default, at
    /// most an hour).
    pub fn state_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.min(MAX_LIFETIME);
        self
    }

    /// The HTTP client token endpoints are called with, instead of the default (no redirects,
    /// 10 s): to trust another CA, or go through a proxy. Keep redirects off.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = client;
        self
    }

    /// The providers, in the order given.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The provider whose redirect URI's path is `path`.
    pub(crate) fn called_back_at(&self, path: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.redirect_uri.path() == path)
    }

    pub(crate) async fn record(&self, event: AuditEvent) {
        if let Some(writer) = &self.audit {
            writer.record(event).await;
        }
    }

    /// The token kept under `id`, opened: `None` if there is none.
    pub async fn credentials(&self, id: &str) -> Result<Option<Credentials>, CallbackError> {
        let Some(token) = self.store.backend().provider_token(id).await? else {
            return Ok(None);
        };
        let access = self.key.open(&token.id, "access", &token.access)?;
        let refresh = token
            .refresh
            .as_ref()
            .map(|sealed| self.key.open(&token.id, "refresh", sealed))
            .transpose()?;
        Ok(Some(Credentials {
            token,
            access,
            refresh,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, MemoryUserDirectory};
    use crate::token::TokenFormat;

    fn provider(name: &str, redirect: &str) -> Provider {
        Provider::new(
            name,
            "https://p.example/a",
            "https://p.example/t",
            "id",
            redirect,
        )
        .unwrap()
    }

    #[test]
    fn providers_need_their_own_name_and_callback_path() {
        let store = MemoryStore::new(
            TokenFormat::new("acme").unwrap(),
            MemoryUserDirectory::new(),
        );
        let receiver = CallbackReceiver::new(store, CallbackKey::new([1; 32]))
            .provider(provider("a", "https://app.example/connect/a/callback"))
            .unwrap();
        for (name, redirect) in [
            ("a", "https://app.example/connect/a2/callback"),
            ("b", "https://other.example/connect/a/callback"),
            ("c", "https://app.example/connect/c"),
        ] {
            assert!(
                receiver.clone().provider(provider(name, redirect)).is_err(),
                "{name}"
            );
        }
        let receiver = receiver
            .provider(provider("b", "https://app.example/connect/b/callback"))
            .unwrap();
        let _ = receiver.router();
        assert_eq!(receiver.providers().len(), 2);
    }
}
