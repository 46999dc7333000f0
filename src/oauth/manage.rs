//! What an operator does with clients and connections (the CLI, an admin page): register a
//! client with its secret shown once, give an agent its redirect allowlist, revoke a client,
//! list and end connections.

use super::client::{Client, ClientAuth, ClientKind};
use super::connection::Connection;
use super::redirect::{RedirectPattern, RedirectUri};
use super::secret::{self, CLIENT_SECRET, Secret};
use crate::error::{NotFound, StoreError};
use crate::principal::{AgentId, UserId};
use crate::store::{AgentStatus, Backend, Store};

/// A client an operator registers: a name, its redirect URIs, whether it holds a secret and
/// whether it may introspect tokens (what a resource server needs).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NewClient {
    name: String,
    redirect_uris: Vec<String>,
    confidential: bool,
    may_introspect: bool,
}

impl NewClient {
    /// A public client named `name`, with no redirect URI.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Adds a redirect URI (checked as [`RedirectUri`] when registered).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Gives it a client secret (`client_secret_basic`).
    pub fn confidential(mut self) -> Self {
        self.confidential = true;
        self
    }

    /// Lets it call the introspection endpoint (implies a secret).
    pub fn may_introspect(mut self) -> Self {
        self.may_introspect = true;
        self.confidential = true;
        self
    }
}

/// A client just registered, with its secret: shown once, never stored.
#[derive(Debug)]
pub struct RegisteredClient {
    /// The client as stored.
    pub client: Client,
    /// Its secret, for a confidential client.
    pub secret: Option<ClientSecret>,
}

/// A client secret: redacted in `Debug`, no `Display`, wiped when dropped.
pub struct ClientSecret(Secret);

impl ClientSecret {
    /// The secret, to hand to the client's operator once.
    pub fn expose_secret(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// The longest client name kept.
const MAX_NAME: usize = 100;

impl<B: Backend> Store<B> {
    /// Registers a client for an operator: it does not lapse unused, as an open registration
    /// does. Every redirect URI must be a valid [`RedirectUri`].
    pub async fn register_client(&self, new: NewClient) -> Result<RegisteredClient, StoreError> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(StoreError::invalid(format!(
                "a client name is 1 to {MAX_NAME} bytes of text"
            )));
        }
        for uri in &new.redirect_uris {
            RedirectUri::parse(uri)
                .map_err(|error| StoreError::invalid(format!("redirect URI {uri:?}: {error}")))?;
        }
        let unavailable =
            |error: super::error::OAuthError| StoreError::unavailable(error.to_string());
        let id = secret::client_id().map_err(unavailable)?;
        let mut client = Client::new(id, ClientKind::Registered, name, self.now());
        client.redirect_uris = new.redirect_uris;
        client.may_introspect = new.may_introspect;
        let secret = if new.confidential {
            let secret = secret::secret(CLIENT_SECRET).map_err(unavailable)?;
            client.auth = ClientAuth::SecretBasic;
            client.secret_hash = Some(secret.hash());
            Some(ClientSecret(secret))
        } else {
            None
        };
        self.backend()
            .insert_client(&client, None, self.now())
            .await?;
        Ok(RegisteredClient { client, secret })
    }

    /// Gives the agent `agent` a client secret, shown once: its client (`client_id` = its slug,
    /// made if it has none, its redirect allowlist kept) becomes confidential
    /// (`client_secret_basic` or `client_secret_post`) and may use the `client_credentials`
    /// grant — and, for an orchestrator, `POST /oauth/agent-token`. A client that used the slug
    /// with no secret must present it from now on. Registering again replaces the secret (the
    /// old one fails at once) and lifts a revocation of the client.
    pub async fn register_agent_client(
        &self,
        agent: &AgentId,
    ) -> Result<RegisteredClient, StoreError> {
        let found = self
            .agent(agent)
            .await?
            .ok_or_else(|| StoreError::unknown_agent(agent))?;
        let unavailable =
            |error: super::error::OAuthError| StoreError::unavailable(error.to_string());
        let secret = secret::secret(CLIENT_SECRET).map_err(unavailable)?;
        let backend = self.backend();
        let Some(mut client) = backend.client(&found.slug).await? else {
            let slug = found.slug.to_string();
            let mut client = Client::new(
                slug.clone(),
                ClientKind::Agent(found.id.clone()),
                slug,
                self.now(),
            );
            client.auth = ClientAuth::SecretBasic;
            client.secret_hash = Some(secret.hash());
            backend.insert_client(&client, None, self.now()).await?;
            return Ok(RegisteredClient {
                client,
                secret: Some(ClientSecret(secret)),
            });
        };
        if client.agent() != Some(&found.id) {
            return Err(StoreError::invalid(format!(
                "client id {} is another client's",
                found.slug
            )));
        }
        client.auth = ClientAuth::SecretBasic;
        client.secret_hash = Some(secret.hash());
        client.revoked_at = None;
        // A use recorded at the same moment writes the whole record back (the backend has no
        // narrower update): write again until the new secret is the one stored.
        for _ in 0..3 {
            backend.update_client(&client).await?;
            let stored = backend
                .client(&client.id)
                .await?
                .ok_or_else(|| NotFound::Client(client.id.clone()))?;
            if stored.secret_hash == client.secret_hash && stored.revoked_at.is_none() {
                return Ok(RegisteredClient {
                    client: stored,
                    secret: Some(ClientSecret(secret)),
                });
            }
            client.last_used_at = stored.last_used_at;
        }
        Err(StoreError::unavailable(
            "the client changed while its secret was replaced; try again",
        ))
    }

    /// The client with this id.
    pub async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.backend().client(id).await
    }

    /// Every client, by id.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.backend().clients().await
    }

    /// Revokes a client: it obtains nothing more, and every connection to it ends
    /// ([`Store::disconnect`]). [`NotFound::Client`] if there is none.
    pub async fn revoke_client(&self, id: &str) -> Result<Client, StoreError> {
        let mut client = self
            .backend()
            .client(id)
            .await?
            .ok_or_else(|| NotFound::Client(id.to_owned()))?;
        if client.revoked_at.is_none() {
            client.revoked_at = Some(self.now());
            self.backend().update_client(&client).await?;
        }
        for connection in self.backend().connections(None).await? {
            if connection.client_id == id {
                self.disconnect(&connection.user, id).await?;
            }
        }
        Ok(client)
    }

    /// Sets the redirect allowlist of `agent` as an OAuth client (`client_id` = its slug):
    /// exact URIs, path-prefix wildcards and domains ([`RedirectPattern`]). An empty list
    /// keeps the client but lets it be sent nowhere.
    pub async fn set_agent_redirects(
        &self,
        agent: &AgentId,
        patterns: &[RedirectPattern],
    ) -> Result<Client, StoreError> {
        let found = self
            .agent(agent)
            .await?
            .ok_or_else(|| StoreError::unknown_agent(agent))?;
        let uris: Vec<String> = patterns.iter().map(ToString::to_string).collect();
        if let Some(mut client) = self.backend().client(&found.slug).await? {
            if client.agent() != Some(&found.id) {
                return Err(StoreError::invalid(format!(
                    "client id {} is another client's",
                    found.slug
                )));
            }
            client.redirect_uris = uris;
            self.backend().update_client(&client).await?;
            return Ok(client);
        }
        let mut client = Client::new(
            found.slug.to_string(),
            ClientKind::Agent(found.id.clone()),
            found.slug.to_string(),
            self.now(),
        );
        client.redirect_uris = uris;
        self.backend()
            .insert_client(&client, None, self.now())
            .await?;
        Ok(client)
    }

    /// The connections of `user`, or every connection.
    pub async fn connections(&self, user: Option<&UserId>) -> Result<Vec<Connection>, StoreError> {
        self.backend().connections(user).await
    }

    /// Ends `user`'s connection to `client`: every token of its agent is revoked and the agent
    /// disabled (re-enabling it revives nothing), and the connection is forgotten, so a later
    /// consent makes a new one; its refresh tokens fail from then on, their agent being
    /// disabled. `false` if there was none.
    pub async fn disconnect(&self, user: &UserId, client: &str) -> Result<bool, StoreError> {
        let Some(connection) = self.backend().connection(user, client).await? else {
            return Ok(false);
        };
        match self.revoke_all_tokens(&connection.agent).await {
            Ok(_) | Err(StoreError::NotFound(NotFound::Agent(_))) => {}
            Err(error) => return Err(error),
        }
        match self
            .set_agent_status(&connection.agent, AgentStatus::Disabled)
            .await
        {
            Ok(_) | Err(StoreError::NotFound(NotFound::Agent(_))) => {}
            Err(error) => return Err(error),
        }
        self.backend().delete_connection(user, client).await
    }
}
