//! Client ID Metadata Documents (feature `client-id-metadata-documents`,
//! `draft-ietf-oauth-client-id-metadata-document`): a client whose `client_id` is an https URL
//! is known by the JSON document at that URL, with no registration. The MCP authorization
//! specification (2025-11-25) has clients prefer this to registration; the TypeScript MCP SDKs
//! use it when the metadata says `client_id_metadata_document_supported: true`, which this
//! server says once [`AuthorizationServer::metadata_documents`] is set.
//!
//! # Where a document is read
//!
//! - **The authorization endpoint** (the consent page, and the consent form's post): the
//!   document is the client, its `client_name` shown with the URL's host — the host is what the
//!   person should trust, the name is only what that site says. A refused document is an error
//!   page (`invalid_client`; `invalid_request` for a `client_id` that is no document URL),
//!   never a redirect: its redirect URIs are not known.
//! - **Consent** keeps the client's record in the store (kind `metadata_document`, id the URL),
//!   so that its codes, refresh tokens and connections refer to it, and so that it can be
//!   listed and revoked like any client (`agent-auth client revoke URL`).
//! - **The token endpoint** reads the document again (from the cache, usually): a client whose
//!   document is gone, or refused now, obtains nothing (`invalid_client`).
//!
//! # The fetch
//!
//! - https only, with the webpki roots (Mozilla's) — and a test CA only through
//!   [`TestTrust`];
//! - the host resolved once ([`Resolve`]); every address checked against [`classify`]
//!   (loopback, private, link-local, unique-local and other special-use addresses are refused,
//!   IPv4-mapped forms included); the connection made to a checked address, with the name in
//!   SNI, the certificate check and `Host` — so DNS rebinding finds nothing to rebind;
//! - no redirect followed (a `3xx` is refused), no proxy, `200` only, JSON only;
//! - at most [`MAX_SIZE`] bytes, and [`MAX_TIME`] for all of it (resolution included);
//! - at most [`MAX_FETCHES`] at once; two requests for the same document share one fetch.
//!
//! # The document
//!
//! `client_id` exactly the URL; `redirect_uris` 1 to 10, each a valid
//! [`RedirectUri`](super::redirect::RedirectUri); no `client_secret`, and
//! `token_endpoint_auth_method` `none` or absent: secret-based methods are refused (the draft
//! forbids them), and `private_key_jwt` is not supported. `grant_types` within
//! `authorization_code` and `refresh_token`, `response_types` within `code`.
//!
//! # The cache
//!
//! A valid document is kept in memory for its `Cache-Control: max-age`, within
//! [`MetadataDocuments::cache_bounds`] (1 minute to 1 day by default; `no-store`, `no-cache`
//! or no `max-age` keep it the lower bound, so a busy client is not fetched at every request),
//! for at most [`MetadataDocuments::capacity`] documents. Errors and refused documents are
//! never kept. Each node keeps its own.
//!
//! ```
//! use tower_agent_auth::oauth::AuthorizationServer;
//! use tower_agent_auth::oauth::document::MetadataDocuments;
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
//! use tower_agent_auth::token::TokenFormat;
//!
//! let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
//! let server = AuthorizationServer::new(store, "https://auth.example.com")
//!     .unwrap()
//!     .metadata_documents(MetadataDocuments::new());
//! assert_eq!(server.metadata()["client_id_metadata_document_supported"], true);
//! ```
//!
//! [`AuthorizationServer::metadata_documents`]: super::AuthorizationServer::metadata_documents

mod address;
mod cache;
mod error;
mod fetch;
mod limits;
mod resolve;
mod trust;
mod url;
mod validate;

pub use address::{AddressKind, classify};
pub use error::DocumentError;
pub use limits::{MAX_FETCHES, MAX_SIZE, MAX_TIME};
pub use resolve::{Resolve, SystemResolver};
pub use trust::{TestCaError, TestTrust};

pub(crate) use url::is_document_id;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Semaphore;

use self::cache::{Expiry, Kept};
use self::fetch::Fetcher;
use self::url::DocumentUrl;
use super::client::Client;

/// How Client ID Metadata Documents are fetched and kept: given to
/// [`AuthorizationServer::metadata_documents`](super::AuthorizationServer::metadata_documents).
#[derive(Clone)]
pub struct MetadataDocuments {
    resolver: Arc<dyn Resolve>,
    timeout: Duration,
    min_keep: Duration,
    max_keep: Duration,
    capacity: u64,
    trust: Option<TestTrust>,
}

impl std::fmt::Debug for MetadataDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataDocuments")
            .field("timeout", &self.timeout)
            .field("min_keep", &self.min_keep)
            .field("max_keep", &self.max_keep)
            .field("capacity", &self.capacity)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Default for MetadataDocuments {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataDocuments {
    /// The system's resolver, [`MAX_TIME`], kept 1 minute to 1 day, at most 4096 documents,
    /// the webpki roots only.
    pub fn new() -> Self {
        Self {
            resolver: Arc::new(SystemResolver),
            timeout: MAX_TIME,
            min_keep: Duration::from_secs(60),
            max_keep: Duration::from_secs(86_400),
            capacity: 4096,
            trust: None,
        }
    }

    /// Resolves hosts with `resolver` instead of the system's.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// A shorter time limit than [`MAX_TIME`] (a longer one is cut to it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_TIME);
        self
    }

    /// How long a document is kept at least and at most, whatever its `Cache-Control` says.
    pub fn cache_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_keep = min;
        self.max_keep = max.max(min);
        self
    }

    /// The most documents kept at once.
    pub fn capacity(mut self, documents: u64) -> Self {
        self.capacity = documents;
        self
    }

    /// **For tests only**: trusts `trust`'s CA besides the webpki roots, and fetches from
    /// loopback addresses if it allows them. Never in production: see [`TestTrust`].
    pub fn trust_for_tests(mut self, trust: TestTrust) -> Self {
        self.trust = Some(trust);
        self
    }
}

/// The documents of one authorization server: the fetcher, the cache, the limit on fetches.
pub(crate) struct Documents {
    config: MetadataDocuments,
    fetcher: Fetcher,
    cache: moka::future::Cache<String, Arc<Kept>>,
    fetches: Semaphore,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Documents {
    pub(crate) fn new(config: MetadataDocuments) -> Self {
        let tls = trust::connector(config.trust.as_ref());
        if config.trust.is_some() {
            tracing::warn!(
                "oauth: metadata documents trust a test CA{}: for tests only",
                if config
                    .trust
                    .as_ref()
                    .is_some_and(TestTrust::allows_loopback)
                {
                    " and loopback hosts"
                } else {
                    ""
                }
            );
        }
        let fetcher = Fetcher {
            resolver: config.resolver.clone(),
            tls,
            allow_loopback: config
                .trust
                .as_ref()
                .is_some_and(TestTrust::allows_loopback),
            timeout: config.timeout,
        };
        let cache = moka::future::Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(Expiry)
            .build();
        Self {
            config,
            fetcher,
            cache,
            fetches: Semaphore::new(MAX_FETCHES),
        }
    }

    /// How it was configured.
    pub(crate) fn config(&self) -> &MetadataDocuments {
        &self.config
    }

    /// The client the document at `client_id` describes: from the cache, or fetched and
    /// checked now (`now` is its record's creation time).
    pub(crate) async fn client(
        &self,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<Client, DocumentError> {
        let url = DocumentUrl::parse(client_id)?;
        let kept = self
            .cache
            .try_get_with(client_id.to_owned(), self.fetch(&url, now))
            .await
            .map_err(|error| {
                tracing::info!(client = %client_id, %error, "oauth: metadata document refused");
                DocumentError::clone(&error)
            })?;
        Ok(kept.client.clone())
    }

    async fn fetch(
        &self,
        url: &DocumentUrl,
        now: OffsetDateTime,
    ) -> Result<Arc<Kept>, DocumentError> {
        let _permit = self
            .fetches
            .try_acquire()
            .map_err(|_| DocumentError::Busy)?;
        let fetched = self.fetcher.fetch(url).await?;
        let client = validate::client(url, &fetched.body, now)?;
        let keep_for =
            cache::keep_for(&fetched.headers, self.config.min_keep, self.config.max_keep);
        tracing::debug!(client = %url.as_str(), ?keep_for, "oauth: metadata document fetched");
        Ok(Arc::new(Kept { client, keep_for }))
    }
}
