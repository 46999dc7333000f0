//! The callback receiver's records (feature `callback`, migration 15): pending authorizations
//! in `agent_auth_callback_states`, provider tokens in `agent_auth_provider_tokens`.
//!
//! A `state` is taken by one statement, `UPDATE … SET used_at WHERE used_at IS NULL RETURNING`:
//! of two callbacks at once, on any nodes, one changes the row and the other finds it used. An
//! agent's token for a provider is replaced by one upsert on `(agent_id, provider)`. Foreign
//! keys with `ON DELETE CASCADE` take an agent's records with it.

use time::OffsetDateTime;

use super::Core;
use super::dialect::{Driver, sql};
use super::error::{is_foreign_key_violation, is_unique_violation, store_error};
use crate::error::{Conflict, StoreError};
use crate::oauth::callback::{CallbackState, ProviderToken, Sealed, StateTaken};
use crate::principal::{AgentId, UserId};
use crate::store::validate::{from_micros, micros};
use crate::token::TokenHash;

/// The columns of `agent_auth_callback_states`, in insert order (checked by the tests).
#[cfg(test)]
const STATE_COLUMNS: &str =
    "hash, session, user_id, agent_id, provider, verifier, created_at, expires_at, used_at";

const INSERT_STATE: &str = "INSERT INTO agent_auth_callback_states (hash, session, user_id, \
    agent_id, provider, verifier, created_at, expires_at, used_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Takes the state `$1` at `$2` if it is unused: the row as it was before.
const TAKE_STATE: &str = "UPDATE agent_auth_callback_states SET used_at = $2 \
    WHERE hash = $1 AND used_at IS NULL \
    RETURNING hash, session, user_id, agent_id, provider, verifier, created_at, expires_at, used_at";

const STATE_BY_HASH: &str = "SELECT hash, session, user_id, agent_id, provider, verifier, \
    created_at, expires_at, used_at FROM agent_auth_callback_states WHERE hash = $1";

const PURGE_STATES: &str = "DELETE FROM agent_auth_callback_states WHERE expires_at < $1";

/// The columns of `agent_auth_provider_tokens`, in insert order (checked by the tests).
#[cfg(test)]
const TOKEN_COLUMNS: &str = "id, provider, agent_id, connected_by, created_at, scopes, \
    token_type, expires_at, access, refresh";

/// Stores a token in place of its agent's for the provider.
const PUT_TOKEN: &str = "INSERT INTO agent_auth_provider_tokens (id, provider, agent_id, \
    connected_by, created_at, scopes, token_type, expires_at, access, refresh) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
    ON CONFLICT (agent_id, provider) DO UPDATE SET id = excluded.id, \
    connected_by = excluded.connected_by, created_at = excluded.created_at, \
    scopes = excluded.scopes, token_type = excluded.token_type, \
    expires_at = excluded.expires_at, access = excluded.access, refresh = excluded.refresh";

const TOKEN_BY_ID: &str = "SELECT id, provider, agent_id, connected_by, created_at, scopes, \
    token_type, expires_at, access, refresh FROM agent_auth_provider_tokens WHERE id = $1";

const TOKENS: &str = "SELECT id, provider, agent_id, connected_by, created_at, scopes, \
    token_type, expires_at, access, refresh FROM agent_auth_provider_tokens \
    ORDER BY agent_id, provider";

const TOKENS_OF_AGENT: &str = "SELECT id, provider, agent_id, connected_by, created_at, scopes, \
    token_type, expires_at, access, refresh FROM agent_auth_provider_tokens \
    WHERE agent_id = $1 ORDER BY agent_id, provider";

const DELETE_TOKEN: &str = "DELETE FROM agent_auth_provider_tokens WHERE id = $1";

fn corrupt(what: &str) -> StoreError {
    StoreError::unavailable(format!("stored callback {what} is not valid"))
}

fn digest(bytes: Option<Vec<u8>>) -> Result<TokenHash, StoreError> {
    let bytes = bytes.ok_or_else(|| corrupt("hash"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(TokenHash::from_bytes)
        .map_err(|_| corrupt("hash"))
}

fn sealed<B: Driver>(row: &B::Row, column: &str) -> Result<Option<Sealed>, StoreError> {
    Ok(B::opt_bytes(row, column)
        .map_err(store_error)?
        .map(Sealed::from_bytes))
}

fn state<B: Driver>(row: &B::Row) -> Result<CallbackState, StoreError> {
    let text = |c: &str| B::text(row, c).map_err(store_error);
    let time = |c: &str| B::int(row, c).map(from_micros).map_err(store_error);
    let mut found = CallbackState::new(
        digest(B::opt_bytes(row, "hash").map_err(store_error)?)?,
        digest(B::opt_bytes(row, "session").map_err(store_error)?)?,
        UserId::new(text("user_id")?),
        AgentId::new(text("agent_id")?),
        text("provider")?,
        sealed::<B>(row, "verifier")?.ok_or_else(|| corrupt("verifier"))?,
        time("created_at")?,
        time("expires_at")?,
    );
    found.used_at = B::opt_int(row, "used_at")
        .map_err(store_error)?
        .map(from_micros);
    Ok(found)
}

fn token<B: Driver>(row: &B::Row) -> Result<ProviderToken, StoreError> {
    let text = |c: &str| B::text(row, c).map_err(store_error);
    let mut found = ProviderToken::new(
        text("id")?,
        text("provider")?,
        AgentId::new(text("agent_id")?),
        UserId::new(text("connected_by")?),
        B::int(row, "created_at")
            .map(from_micros)
            .map_err(store_error)?,
        text("token_type")?,
        sealed::<B>(row, "access")?.ok_or_else(|| corrupt("access token"))?,
    );
    found.scopes = serde_json::from_str(&text("scopes")?).map_err(|_| corrupt("scopes"))?;
    found.expires_at = B::opt_int(row, "expires_at")
        .map_err(store_error)?
        .map(from_micros);
    found.refresh = sealed::<B>(row, "refresh")?;
    Ok(found)
}

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_callback_state(
        &self,
        pending: &CallbackState,
    ) -> Result<(), StoreError> {
        let inserted = sql(INSERT_STATE)
            .bind(pending.hash.as_bytes().as_slice())
            .bind(pending.session.as_bytes().as_slice())
            .bind(pending.user.as_str())
            .bind(pending.agent.as_str())
            .bind(pending.provider.as_str())
            .bind(pending.verifier.as_bytes())
            .bind(micros(pending.created_at))
            .bind(micros(pending.expires_at))
            .bind(pending.used_at.map(micros))
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Conflict::Token.into()),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::unknown_agent(&pending.agent))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn take_callback_state(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<StateTaken, StoreError> {
        let taken = sql(TAKE_STATE)
            .bind(hash.as_bytes().as_slice())
            .bind(micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        if let Some(row) = taken {
            let mut found = state::<B>(&row)?;
            found.used_at = None;
            return Ok(StateTaken::Taken(found));
        }
        let stands = sql(STATE_BY_HASH)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(match stands {
            Some(row) => StateTaken::Replayed(state::<B>(&row)?),
            None => StateTaken::Unknown,
        })
    }

    pub(crate) async fn purge_callback_states(
        &self,
        before: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let purged = sql(PURGE_STATES)
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    pub(crate) async fn put_provider_token(&self, put: &ProviderToken) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&put.scopes).map_err(StoreError::unavailable)?;
        let stored = sql(PUT_TOKEN)
            .bind(put.id.as_str())
            .bind(put.provider.as_str())
            .bind(put.agent.as_str())
            .bind(put.connected_by.as_str())
            .bind(micros(put.created_at))
            .bind(scopes)
            .bind(put.token_type.as_str())
            .bind(put.expires_at.map(micros))
            .bind(put.access.as_bytes())
            .bind(put.refresh.as_ref().map(Sealed::as_bytes))
            .execute(&self.pool)
            .await;
        match stored {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Conflict::Token.into()),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::unknown_agent(&put.agent)),
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn provider_token(
        &self,
        id: &str,
    ) -> Result<Option<ProviderToken>, StoreError> {
        let row = sql(TOKEN_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(token::<B>).transpose()
    }

    pub(crate) async fn provider_tokens(
        &self,
        agent: Option<&AgentId>,
    ) -> Result<Vec<ProviderToken>, StoreError> {
        let rows = match agent {
            Some(agent) => sql(TOKENS_OF_AGENT).bind(agent.as_str()),
            None => sql(TOKENS),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(token::<B>).collect()
    }

    pub(crate) async fn delete_provider_token(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = sql(DELETE_TOKEN)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_every_column() {
        let placeholders = |n: usize| {
            (1..=n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert!(INSERT_STATE.contains(&format!("({STATE_COLUMNS}) VALUES ({})", placeholders(9))));
        assert!(PUT_TOKEN.contains(&format!("({TOKEN_COLUMNS}) VALUES ({})", placeholders(10))));
        for statement in [TAKE_STATE, STATE_BY_HASH] {
            assert!(statement.contains(STATE_COLUMNS), "{statement}");
        }
        for statement in [TOKEN_BY_ID, TOKENS, TOKENS_OF_AGENT] {
            assert!(statement.contains(TOKEN_COLUMNS), "{statement}");
        }
        // The upsert replaces every column but the agent and provider it is keyed on.
        for column in TOKEN_COLUMNS.split(", ") {
            if column != "agent_id" && column != "provider" {
                assert!(
                    PUT_TOKEN.contains(&format!("{column} = excluded.{column}")),
                    "{column}"
                );
            }
        }
    }
}
