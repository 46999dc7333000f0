//! OAuth records (feature `oauth`): clients in `agent_auth_oauth_clients`, authorization codes
//! in `agent_auth_oauth_codes`, refresh tokens in `agent_auth_oauth_refresh_tokens` and
//! connections in `agent_auth_oauth_connections` (migration 13); device authorizations in
//! `agent_auth_oauth_devices` (migration 14, [`device`]).
//!
//! Longer than most files: each statement stands beside the method that runs it, for the four
//! records together, since they cascade into one another.
//!
//! Each step that many nodes could race is one statement whose condition the database checks
//! on the row it changes — a code redeemed `WHERE redeemed_at IS NULL`, a refresh token rotated
//! `WHERE rotated_at IS NULL AND revoked_at IS NULL` (PostgreSQL re-reads a row another
//! transaction changed meanwhile, SQLite has one writer), a connection inserted `ON CONFLICT DO
//! NOTHING` — so of two at once, on any nodes, one wins. The registration cap is a conditional
//! insert that counts in the same statement; on PostgreSQL, where two transactions could both
//! count below the cap, registrations also take one advisory lock
//! ([`Dialect::REGISTRATION_LOCK`](super::dialect::Dialect::REGISTRATION_LOCK)). Foreign keys
//! with `ON DELETE CASCADE` take a client's or an agent's records with it.

mod device;

use time::OffsetDateTime;

use super::Core;
use super::dialect::{Driver, On, sql};
use super::error::{is_foreign_key_violation, is_unique_violation, store_error};
use super::rows::{capabilities_from_json, capabilities_to_json};
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::{
    AuthorizationCode, Client, ClientAuth, ClientKind, Connection, FamilyId, Redemption,
    RefreshRotation, RefreshToken,
};
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::validate::{from_micros, micros};
use crate::token::TokenHash;

/// The columns of `agent_auth_oauth_clients`, in insert order: every
/// statement here names them all (checked by the tests).
#[cfg(test)]
const CLIENT_COLUMNS: &str = "id, kind, agent_id, name, redirect_uris, auth, secret_hash, \
    scope, may_introspect, created_at, last_used_at, expires_at, revoked_at";

const INSERT_CLIENT: &str = "INSERT INTO agent_auth_oauth_clients (id, kind, agent_id, name, \
    redirect_uris, auth, secret_hash, scope, may_introspect, created_at, last_used_at, \
    expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// [`INSERT_CLIENT`] only while fewer than `$15` registered clients are live at `$14`: counted
/// by the statement that inserts, so that no registration slips in between.
const INSERT_CLIENT_UNDER_CAP: &str = "INSERT INTO agent_auth_oauth_clients (id, kind, \
    agent_id, name, redirect_uris, auth, secret_hash, scope, may_introspect, created_at, \
    last_used_at, expires_at, revoked_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
    WHERE (SELECT COUNT(*) FROM agent_auth_oauth_clients WHERE kind = 'registered' \
        AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $14)) < $15";

/// The client `$1`.
const CLIENT_BY_ID: &str = "SELECT id, kind, agent_id, name, redirect_uris, auth, secret_hash, \
    scope, may_introspect, created_at, last_used_at, expires_at, revoked_at \
    FROM agent_auth_oauth_clients WHERE id = $1";

/// Every client, by id.
const CLIENTS: &str = "SELECT id, kind, agent_id, name, redirect_uris, auth, secret_hash, \
    scope, may_introspect, created_at, last_used_at, expires_at, revoked_at \
    FROM agent_auth_oauth_clients ORDER BY id";

/// Replaces what may change of the client `$1`: its id, kind, agent and creation stay.
const UPDATE_CLIENT: &str = "UPDATE agent_auth_oauth_clients SET name = $2, redirect_uris = $3, \
    auth = $4, secret_hash = $5, scope = $6, may_introspect = $7, last_used_at = $8, \
    expires_at = $9, revoked_at = $10 WHERE id = $1";

/// Deletes the client `$1`, and so by the foreign keys its codes, refresh tokens and
/// connections.
const DELETE_CLIENT: &str = "DELETE FROM agent_auth_oauth_clients WHERE id = $1";

/// The columns of `agent_auth_oauth_codes`, in insert order: every
/// statement here names them all (checked by the tests).
#[cfg(test)]
const CODE_COLUMNS: &str = "hash, client_id, redirect_uri, challenge, resource, user_id, \
    agent_id, capabilities, created_at, expires_at, redeemed_at, family, replayed_at";

const INSERT_CODE: &str = "INSERT INTO agent_auth_oauth_codes (hash, client_id, redirect_uri, \
    challenge, resource, user_id, agent_id, capabilities, created_at, expires_at, redeemed_at, \
    family, replayed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// Redeems the code `$1` at `$2` for the family `$3` if it was not: of two redemptions at once,
/// the second finds `redeemed_at` set on the row the first changed, and changes nothing.
const REDEEM_CODE: &str = "UPDATE agent_auth_oauth_codes SET redeemed_at = $2, family = $3 \
    WHERE hash = $1 AND redeemed_at IS NULL \
    RETURNING hash, client_id, redirect_uri, challenge, resource, user_id, agent_id, \
    capabilities, created_at, expires_at, redeemed_at, family, replayed_at";

/// Marks the redeemed code `$1` replayed at `$2` (the first replay's time stays): what the
/// redeemer reads after issuing.
const REPLAY_CODE: &str = "UPDATE agent_auth_oauth_codes \
    SET replayed_at = COALESCE(replayed_at, $2) \
    WHERE hash = $1 AND redeemed_at IS NOT NULL \
    RETURNING hash, client_id, redirect_uri, challenge, resource, user_id, agent_id, \
    capabilities, created_at, expires_at, redeemed_at, family, replayed_at";

/// The code `$1`.
const CODE_BY_HASH: &str = "SELECT hash, client_id, redirect_uri, challenge, resource, \
    user_id, agent_id, capabilities, created_at, expires_at, redeemed_at, family, replayed_at \
    FROM agent_auth_oauth_codes WHERE hash = $1";

/// The columns of `agent_auth_oauth_refresh_tokens`, in insert order: every
/// statement here names them all (checked by the tests).
#[cfg(test)]
const REFRESH_COLUMNS: &str = "hash, family, client_id, agent_id, user_id, capabilities, \
    resource, access_token_id, created_at, expires_at, rotated_at, revoked_at";

const INSERT_REFRESH: &str = "INSERT INTO agent_auth_oauth_refresh_tokens (hash, family, \
    client_id, agent_id, user_id, capabilities, resource, access_token_id, created_at, \
    expires_at, rotated_at, revoked_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// The refresh token `$1`.
const REFRESH_BY_HASH: &str = "SELECT hash, family, client_id, agent_id, user_id, \
    capabilities, resource, access_token_id, created_at, expires_at, rotated_at, revoked_at \
    FROM agent_auth_oauth_refresh_tokens WHERE hash = $1";

/// Marks the refresh token `$1` rotated at `$2` if it is neither rotated nor revoked: the row
/// stays locked until the new token is stored beside it, and a second rotation, waiting for
/// it, then finds it rotated.
const ROTATE_REFRESH: &str = "UPDATE agent_auth_oauth_refresh_tokens SET rotated_at = $2 \
    WHERE hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
    RETURNING hash, family, client_id, agent_id, user_id, capabilities, resource, \
    access_token_id, created_at, expires_at, rotated_at, revoked_at";

/// Revokes every refresh token of the family `$1` at `$2` (one revoked before keeps its
/// instant): the access tokens they were issued with.
const REVOKE_FAMILY: &str = "UPDATE agent_auth_oauth_refresh_tokens \
    SET revoked_at = COALESCE(revoked_at, $2) WHERE family = $1 \
    RETURNING access_token_id, created_at";

/// The columns of `agent_auth_oauth_connections`, in insert order: every
/// statement here names them all (checked by the tests).
#[cfg(test)]
const CONNECTION_COLUMNS: &str = "user_id, client_id, agent_id, created_at";

/// Stores a connection unless the person is connected to the client already.
const CONNECT: &str = "INSERT INTO agent_auth_oauth_connections (user_id, client_id, \
    agent_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) DO NOTHING";

/// The connection of `$1` to `$2`.
const CONNECTION: &str = "SELECT user_id, client_id, agent_id, created_at \
    FROM agent_auth_oauth_connections WHERE user_id = $1 AND client_id = $2";

/// Every connection, by user then client.
const CONNECTIONS: &str = "SELECT user_id, client_id, agent_id, created_at \
    FROM agent_auth_oauth_connections ORDER BY user_id, client_id";

/// The connections of `$1`, by client.
const CONNECTIONS_OF_USER: &str = "SELECT user_id, client_id, agent_id, created_at \
    FROM agent_auth_oauth_connections WHERE user_id = $1 ORDER BY user_id, client_id";

const DELETE_CONNECTION: &str =
    "DELETE FROM agent_auth_oauth_connections WHERE user_id = $1 AND client_id = $2";

/// Codes that lapsed before `$1`.
const PURGE_CODES: &str = "DELETE FROM agent_auth_oauth_codes WHERE expires_at < $1";

/// Device authorizations (migration 14) that lapsed before `$1`.
const PURGE_DEVICES: &str = "DELETE FROM agent_auth_oauth_devices WHERE expires_at < $1";

/// Refresh tokens that expired, or were revoked, before `$1`. (A rotated one stays until it
/// expires, so that its reuse is still seen.)
const PURGE_REFRESH: &str = "DELETE FROM agent_auth_oauth_refresh_tokens \
    WHERE (expires_at IS NOT NULL AND expires_at < $1) \
    OR (revoked_at IS NOT NULL AND revoked_at < $1)";

/// Registered clients that lapsed unused before `$1` (a use pushes `expires_at` back), with
/// what they still held.
const PURGE_CLIENTS: &str = "DELETE FROM agent_auth_oauth_clients \
    WHERE kind = 'registered' AND expires_at IS NOT NULL AND expires_at < $1";

fn corrupt(what: &str) -> StoreError {
    StoreError::unavailable(format!("stored OAuth {what} is not valid"))
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A hash column's digest.
fn hash(bytes: Option<Vec<u8>>) -> Result<Option<TokenHash>, StoreError> {
    bytes
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(TokenHash::from_bytes)
                .map_err(|_| corrupt("hash"))
        })
        .transpose()
}

/// Reads one row's columns by name, every error a [`StoreError`].
struct Columns<'r, B: Driver>(&'r B::Row);

impl<B: Driver> Columns<'_, B> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        B::text(self.0, column).map_err(store_error)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        B::opt_text(self.0, column).map_err(store_error)
    }

    fn time(&self, column: &str) -> Result<OffsetDateTime, StoreError> {
        B::int(self.0, column).map(from_micros).map_err(store_error)
    }

    fn opt_time(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(B::opt_int(self.0, column)
            .map_err(store_error)?
            .map(from_micros))
    }

    fn hash(&self, column: &str) -> Result<TokenHash, StoreError> {
        hash(B::opt_bytes(self.0, column).map_err(store_error)?)?.ok_or_else(|| corrupt("hash"))
    }

    fn capabilities(&self, column: &str) -> Result<crate::ceiling::CapabilitySet, StoreError> {
        capabilities_from_json(&self.text(column)?).map_err(|_| corrupt("capabilities"))
    }
}

/// The client in `row` (every column of `CLIENT_COLUMNS`).
fn client<B: Driver>(row: &B::Row) -> Result<Client, StoreError> {
    let c = Columns::<B>(row);
    let kind = match (c.text("kind")?.as_str(), c.opt_text("agent_id")?) {
        ("agent", Some(agent)) => ClientKind::Agent(AgentId::new(agent)),
        ("registered", None) => ClientKind::Registered,
        ("metadata_document", None) => ClientKind::MetadataDocument,
        _ => return Err(corrupt("client kind")),
    };
    let redirect_uris: Vec<String> =
        serde_json::from_str(&c.text("redirect_uris")?).map_err(|_| corrupt("redirect URIs"))?;
    Ok(Client {
        id: c.text("id")?,
        kind,
        name: c.text("name")?,
        redirect_uris,
        auth: ClientAuth::parse(&c.text("auth")?).ok_or_else(|| corrupt("client auth"))?,
        secret_hash: hash(B::opt_bytes(row, "secret_hash").map_err(store_error)?)?,
        scope: c.opt_text("scope")?,
        may_introspect: B::flag(row, "may_introspect").map_err(store_error)?,
        created_at: c.time("created_at")?,
        last_used_at: c.opt_time("last_used_at")?,
        expires_at: c.opt_time("expires_at")?,
        revoked_at: c.opt_time("revoked_at")?,
    })
}

/// The code in `row` (every column of `CODE_COLUMNS`).
fn code<B: Driver>(row: &B::Row) -> Result<AuthorizationCode, StoreError> {
    let c = Columns::<B>(row);
    Ok(AuthorizationCode {
        hash: c.hash("hash")?,
        client_id: c.text("client_id")?,
        redirect_uri: c.text("redirect_uri")?,
        challenge: c.text("challenge")?,
        resource: c.opt_text("resource")?,
        user: UserId::new(c.text("user_id")?),
        agent: AgentId::new(c.text("agent_id")?),
        capabilities: c.capabilities("capabilities")?,
        created_at: c.time("created_at")?,
        expires_at: c.time("expires_at")?,
        redeemed_at: c.opt_time("redeemed_at")?,
        family: c.opt_text("family")?.map(FamilyId::new),
        replayed_at: c.opt_time("replayed_at")?,
    })
}

/// The refresh token in `row` (every column of `REFRESH_COLUMNS`).
fn refresh<B: Driver>(row: &B::Row) -> Result<RefreshToken, StoreError> {
    let c = Columns::<B>(row);
    Ok(RefreshToken {
        hash: c.hash("hash")?,
        family: FamilyId::new(c.text("family")?),
        client_id: c.text("client_id")?,
        agent: AgentId::new(c.text("agent_id")?),
        user: UserId::new(c.text("user_id")?),
        capabilities: c.capabilities("capabilities")?,
        resource: c.opt_text("resource")?,
        access_token: TokenId::new(c.text("access_token_id")?),
        created_at: c.time("created_at")?,
        expires_at: c.opt_time("expires_at")?,
        rotated_at: c.opt_time("rotated_at")?,
        revoked_at: c.opt_time("revoked_at")?,
    })
}

/// The connection in `row` (every column of `CONNECTION_COLUMNS`).
fn connection<B: Driver>(row: &B::Row) -> Result<Connection, StoreError> {
    let c = Columns::<B>(row);
    Ok(Connection {
        user: UserId::new(c.text("user_id")?),
        client_id: c.text("client_id")?,
        agent: AgentId::new(c.text("agent_id")?),
        created_at: c.time("created_at")?,
    })
}

/// Stores a refresh token, on the pool or in a transaction: the database's error as it is.
async fn insert_refresh<'a, E: On<'a>>(on: E, token: &'a RefreshToken) -> Result<(), sqlx::Error> {
    sql(INSERT_REFRESH)
        .bind(token.hash.as_bytes().as_slice())
        .bind(token.family.as_str())
        .bind(token.client_id.as_str())
        .bind(token.agent.as_str())
        .bind(token.user.as_str())
        .bind(capabilities_to_json(&token.capabilities))
        .bind(token.resource.as_deref())
        .bind(token.access_token.as_str())
        .bind(micros(token.created_at))
        .bind(token.expires_at.map(micros))
        .bind(token.rotated_at.map(micros))
        .bind(token.revoked_at.map(micros))
        .execute(on)
        .await
        .map(|_| ())
}

impl<B: Driver> Core<B> {
    /// What a record naming `client` and `agent` was refused for by a foreign key: whichever
    /// of the two is gone.
    async fn missing(&self, client: &str, agent: &AgentId) -> StoreError {
        match self.client(client).await {
            Ok(None) => NotFound::Client(client.to_owned()).into(),
            Ok(Some(_)) => StoreError::unknown_agent(agent),
            Err(e) => e,
        }
    }

    /// A record's insert error as the contract names it: a hash taken, or a client or agent
    /// gone.
    async fn refused(&self, error: sqlx::Error, client: &str, agent: &AgentId) -> StoreError {
        if is_unique_violation(&error) {
            Conflict::Token.into()
        } else if is_foreign_key_violation(&error) {
            self.missing(client, agent).await
        } else {
            store_error(error)
        }
    }

    pub(crate) async fn insert_client(
        &self,
        client: &Client,
        limit: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let capped = match (&client.kind, limit) {
            (ClientKind::Registered, Some(limit)) => Some(i64::try_from(limit).unwrap_or(i64::MAX)),
            _ => None,
        };
        let redirect_uris =
            serde_json::to_string(&client.redirect_uris).map_err(StoreError::unavailable)?;
        let mut statement = sql(if capped.is_some() {
            INSERT_CLIENT_UNDER_CAP
        } else {
            INSERT_CLIENT
        })
        .bind(client.id.as_str())
        .bind(client.kind.as_str())
        .bind(client.agent().map(AgentId::as_str))
        .bind(client.name.as_str())
        .bind(redirect_uris)
        .bind(client.auth.as_str())
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
        .bind(client.scope.as_deref())
        .bind(client.may_introspect)
        .bind(micros(client.created_at))
        .bind(client.last_used_at.map(micros))
        .bind(client.expires_at.map(micros))
        .bind(client.revoked_at.map(micros));
        if let Some(limit) = capped {
            statement = statement.bind(micros(now)).bind(limit);
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        if let (Some(lock), Some(_)) = (B::REGISTRATION_LOCK, capped) {
            sql(lock).execute(&mut tx).await.map_err(store_error)?;
        }
        let error = match statement.execute(&mut tx).await {
            Ok(inserted) => {
                tx.commit().await.map_err(store_error)?;
                return Ok(inserted > 0);
            }
            Err(error) => error,
        };
        // Rolled back now, not when the connection is next used: the lock goes at once.
        tx.rollback().await.map_err(store_error)?;
        Err(if is_unique_violation(&error) {
            Conflict::Client(client.id.clone()).into()
        } else if is_foreign_key_violation(&error) {
            StoreError::unknown_agent(client.agent().map_or("", AgentId::as_str))
        } else {
            store_error(error)
        })
    }

    pub(crate) async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let row = sql(CLIENT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(client::<B>).transpose()
    }

    pub(crate) async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sql(CLIENTS)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(client::<B>).collect()
    }

    pub(crate) async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        let redirect_uris =
            serde_json::to_string(&client.redirect_uris).map_err(StoreError::unavailable)?;
        let changed = sql(UPDATE_CLIENT)
            .bind(client.id.as_str())
            .bind(client.name.as_str())
            .bind(redirect_uris)
            .bind(client.auth.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(client.scope.as_deref())
            .bind(client.may_introspect)
            .bind(client.last_used_at.map(micros))
            .bind(client.expires_at.map(micros))
            .bind(client.revoked_at.map(micros))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(changed > 0)
    }

    pub(crate) async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = sql(DELETE_CLIENT)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted > 0)
    }

    pub(crate) async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let inserted = sql(INSERT_CODE)
            .bind(code.hash.as_bytes().as_slice())
            .bind(code.client_id.as_str())
            .bind(code.redirect_uri.as_str())
            .bind(code.challenge.as_str())
            .bind(code.resource.as_deref())
            .bind(code.user.as_str())
            .bind(code.agent.as_str())
            .bind(capabilities_to_json(&code.capabilities))
            .bind(micros(code.created_at))
            .bind(micros(code.expires_at))
            .bind(code.redeemed_at.map(micros))
            .bind(code.family.as_ref().map(FamilyId::as_str))
            .bind(code.replayed_at.map(micros))
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) => Err(self.refused(e, &code.client_id, &code.agent).await),
        }
    }

    pub(crate) async fn redeem_code(
        &self,
        hash: &TokenHash,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Redemption, StoreError> {
        let redeemed = sql(REDEEM_CODE)
            .bind(hash.as_bytes().as_slice())
            .bind(micros(now))
            .bind(family.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        if let Some(row) = redeemed {
            // Answered as it was before this redemption.
            let mut found = code::<B>(&row)?;
            found.redeemed_at = None;
            found.family = None;
            return Ok(Redemption::Redeemed(found));
        }
        // Redeemed already, or unknown: a replay is marked by the statement that reads it.
        let replayed = sql(REPLAY_CODE)
            .bind(hash.as_bytes().as_slice())
            .bind(micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(match replayed {
            Some(row) => Redemption::Replayed(code::<B>(&row)?),
            None => Redemption::Unknown,
        })
    }

    pub(crate) async fn code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        sql(CODE_BY_HASH)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?
            .map(|row| code::<B>(&row))
            .transpose()
    }

    pub(crate) async fn insert_refresh(&self, token: &RefreshToken) -> Result<(), StoreError> {
        match insert_refresh(&self.pool, token).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refused(e, &token.client_id, &token.agent).await),
        }
    }

    pub(crate) async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let row = sql(REFRESH_BY_HASH)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(refresh::<B>).transpose()
    }

    /// Marks `old` rotated and stores `new` in one transaction: the update locks `old`'s row
    /// (on SQLite, the database) until the commit, so a second rotation waits and then finds
    /// it rotated.
    pub(crate) async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let rotated = sql(ROTATE_REFRESH)
            .bind(old.as_bytes().as_slice())
            .bind(micros(now))
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?;
        let Some(row) = rotated else {
            let row = sql(REFRESH_BY_HASH)
                .bind(old.as_bytes().as_slice())
                .fetch_optional(&mut tx)
                .await
                .map_err(store_error)?;
            // Rolled back at once: on SQLite the update took the database's write lock.
            tx.rollback().await.map_err(store_error)?;
            return Ok(match row {
                Some(row) => RefreshRotation::Reused(refresh::<B>(&row)?),
                None => RefreshRotation::Unknown,
            });
        };
        let mut found = refresh::<B>(&row)?;
        if let Err(e) = insert_refresh(&mut tx, new).await {
            tx.rollback().await.map_err(store_error)?;
            return Err(self.refused(e, &new.client_id, &new.agent).await);
        }
        tx.commit().await.map_err(store_error)?;
        // Answered as it was before this rotation.
        found.rotated_at = None;
        Ok(RefreshRotation::Rotated(found))
    }

    pub(crate) async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let rows = sql(REVOKE_FAMILY)
            .bind(family.as_str())
            .bind(micros(now))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut issued = rows
            .iter()
            .map(|row| {
                let c = Columns::<B>(row);
                Ok((
                    c.time("created_at")?,
                    TokenId::new(c.text("access_token_id")?),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        issued.sort();
        let mut seen = std::collections::HashSet::new();
        Ok(issued
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| seen.insert(id.clone()))
            .collect())
    }

    pub(crate) async fn connection(
        &self,
        user: &UserId,
        client: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let row = sql(CONNECTION)
            .bind(user.as_str())
            .bind(client)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(connection::<B>).transpose()
    }

    /// Inserts unless the person is connected already, then reads what stands: of concurrent
    /// consents, one inserts and every one reads its row (the others' inserts wait for it to
    /// commit, then do nothing).
    pub(crate) async fn connect(&self, new: &Connection) -> Result<Connection, StoreError> {
        let inserted = sql(CONNECT)
            .bind(new.user.as_str())
            .bind(new.client_id.as_str())
            .bind(new.agent.as_str())
            .bind(micros(new.created_at))
            .execute(&self.pool)
            .await;
        if let Err(e) = inserted {
            return Err(self.refused(e, &new.client_id, &new.agent).await);
        }
        let standing = self.connection(&new.user, &new.client_id).await?;
        // Deleted between the two statements: the consent stands as it was asked.
        Ok(standing.unwrap_or_else(|| new.clone()))
    }

    pub(crate) async fn connections(
        &self,
        user: Option<&UserId>,
    ) -> Result<Vec<Connection>, StoreError> {
        let rows = match user {
            Some(user) => sql(CONNECTIONS_OF_USER).bind(user.as_str()),
            None => sql(CONNECTIONS),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(connection::<B>).collect()
    }

    pub(crate) async fn delete_connection(
        &self,
        user: &UserId,
        client: &str,
    ) -> Result<bool, StoreError> {
        let deleted = sql(DELETE_CONNECTION)
            .bind(user.as_str())
            .bind(client)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted > 0)
    }

    /// Codes, device authorizations and refresh tokens first, then clients, so that what the
    /// cascade takes with a client is not counted (as in the memory store).
    pub(crate) async fn purge_oauth(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let mut purged = 0;
        for statement in [PURGE_CODES, PURGE_DEVICES, PURGE_REFRESH, PURGE_CLIENTS] {
            purged += sql(statement)
                .bind(micros(before))
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(count(purged))
    }
}

#[cfg(test)]
mod tests;
