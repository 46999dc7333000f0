//! Finding the client a request names: in the store; or, for an https `client_id` when Client
//! ID Metadata Documents are accepted, by its document (see `oauth::document`), the stored
//! record (kept since a person's consent) lending it its history and its revocation.

use http::StatusCode;

use super::authority::Authority;
use super::client::{Client, ClientKind};
use super::error::OAuthError;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::{Conflict, StoreError};
use crate::store::Backend;

/// Why no client was found.
pub(crate) enum Unfound {
    /// No live client has this id.
    Unknown,
    /// The client's metadata document was refused.
    #[cfg(feature = "client-id-metadata-documents")]
    Document(super::document::DocumentError),
}

impl Unfound {
    /// The error page's status and words: the OAuth error code included, for the person to
    /// pass on to the client's developer.
    pub(crate) fn page(&self) -> (StatusCode, String) {
        match self {
            Self::Unknown => (
                StatusCode::BAD_REQUEST,
                "The application that sent you here is not known to this server.".into(),
            ),
            #[cfg(feature = "client-id-metadata-documents")]
            Self::Document(error) => {
                let code = error.code();
                let status = match code.status() {
                    StatusCode::UNAUTHORIZED => StatusCode::BAD_REQUEST,
                    other => other,
                };
                (
                    status,
                    format!(
                        "The application that sent you here cannot be trusted ({}): {}.",
                        code.as_str(),
                        error.description()
                    ),
                )
            }
        }
    }
}

/// `fresh`, what a document says now, with the history of its stored record.
#[cfg(feature = "client-id-metadata-documents")]
fn merged(fresh: Client, stored: Option<Client>) -> Client {
    let Some(mut client) = stored else {
        return fresh;
    };
    client.name = fresh.name;
    client.redirect_uris = fresh.redirect_uris;
    client.scope = fresh.scope;
    client.auth = fresh.auth;
    client.secret_hash = None;
    client
}

impl<B: Backend> Authority<B> {
    /// Whether `client_id_metadata_document_supported` is true.
    pub(crate) fn metadata_documents_supported(&self) -> bool {
        #[cfg(feature = "client-id-metadata-documents")]
        if self.documents().is_some() {
            return true;
        }
        false
    }

    /// The live client `id` names, as the authorization endpoint sees it: a document's as its
    /// document says now (refused if its stored record was revoked), any other from the store.
    pub(crate) async fn live_client(
        &self,
        id: &str,
    ) -> Result<Result<Client, Unfound>, StoreError> {
        let now = self.now();
        let stored = self.store().backend().client(id).await?;
        #[cfg(feature = "client-id-metadata-documents")]
        if let Some(documents) = self.documents() {
            if super::document::is_document_id(id) {
                if stored
                    .as_ref()
                    .is_some_and(|s| !s.is_live_at(now) || s.kind != ClientKind::MetadataDocument)
                {
                    return Ok(Err(Unfound::Unknown));
                }
                return Ok(match documents.client(id, now).await {
                    Ok(fresh) => Ok(merged(fresh, stored)),
                    Err(error) => Err(Unfound::Document(error)),
                });
            }
        }
        Ok(stored
            .filter(|client| client.is_live_at(now))
            .ok_or(Unfound::Unknown))
    }

    /// Keeps a metadata document's client in the store as `client` (read from its document),
    /// before a person's consent makes records that refer to it: stored at the first consent
    /// (and audited), its name and redirect URIs brought up to date at the next. Other
    /// clients are stored already.
    pub(crate) async fn keep_client(&self, client: &Client) -> Result<(), StoreError> {
        if client.kind != ClientKind::MetadataDocument {
            return Ok(());
        }
        let backend = self.store().backend();
        if let Some(stored) = backend.client(&client.id).await? {
            let same = stored.name == client.name
                && stored.redirect_uris == client.redirect_uris
                && stored.scope == client.scope
                && stored.auth == client.auth;
            if !same {
                let mut updated = stored;
                updated.name.clone_from(&client.name);
                updated.redirect_uris.clone_from(&client.redirect_uris);
                updated.scope.clone_from(&client.scope);
                updated.auth = client.auth;
                backend.update_client(&updated).await?;
            }
            return Ok(());
        }
        let now = self.now();
        match backend.insert_client(client, None, now).await {
            Ok(_) => {}
            // Another consent stored it first.
            Err(StoreError::Conflict(Conflict::Client(_))) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.record(
            AuditEvent::new(now, AuditAction::ClientRegistered, Outcome::Success).detail(format!(
                "client {} ({}, metadata document), at its first consent",
                client.id,
                client.auth.as_str()
            )),
        )
        .await;
        Ok(())
    }

    /// The token endpoint's view of an authenticated `client`: a metadata document's client
    /// as its document says now (`invalid_client` if the document is gone or refused), any
    /// other as stored.
    pub(crate) async fn current_client(&self, client: Client) -> Result<Client, OAuthError> {
        #[cfg(feature = "client-id-metadata-documents")]
        if let (ClientKind::MetadataDocument, Some(documents)) = (&client.kind, self.documents()) {
            let fresh = documents
                .client(&client.id, self.now())
                .await
                .map_err(|error| error.oauth_error())?;
            return Ok(merged(fresh, Some(client)));
        }
        Ok(client)
    }
}

#[cfg(feature = "client-id-metadata-documents")]
impl<B: Backend> Authority<B> {
    /// The client the Client ID Metadata Document at `client_id` describes, read as the
    /// authorization endpoint reads it: from the cache, or fetched and checked now. `None` when
    /// this server does not accept metadata documents.
    pub async fn metadata_document(
        &self,
        client_id: &str,
    ) -> Option<Result<Client, super::document::DocumentError>> {
        let documents = self.documents()?;
        Some(documents.client(client_id, self.now()).await)
    }
}
