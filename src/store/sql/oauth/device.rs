//! Device authorizations (RFC 8628) in `agent_auth_oauth_devices` (migration 14).
//!
//! An answer is one statement conditioned on the row (`WHERE status = 'pending' AND expires_at
//! > now`): of two at once, on any nodes, one changes it. A poll is one transaction whose
//! first statement writes the row — on PostgreSQL that locks it until the commit, on SQLite it
//! takes the database's one write lock — so that a second poll waits, then reads what the
//! first stored; between the two statements the rules of [`DevicePoll::apply`] decide.

use time::OffsetDateTime;

use super::{Columns, corrupt};
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::{DeviceAuthorization, DevicePoll, DeviceStatus, FamilyId, Polled};
use crate::principal::{AgentId, UserId};
use crate::store::sql::Core;
use crate::store::sql::dialect::{Driver, sql};
use crate::store::sql::error::{is_foreign_key_violation, is_unique_violation, store_error};
use crate::store::sql::rows::capabilities_to_json;
use crate::store::validate::micros;
use crate::token::TokenHash;

/// The columns of `agent_auth_oauth_devices`, in insert order: every statement here names them
/// all (checked by the tests).
#[cfg(test)]
const DEVICE_COLUMNS: &str = "hash, user_code, client_id, resource, requested, \
    poll_interval, created_at, expires_at, polled_at, status, user_id, agent_id, capabilities, \
    decided_at, redeemed_at, family, replayed_at";

const INSERT_DEVICE: &str = "INSERT INTO agent_auth_oauth_devices (hash, user_code, \
    client_id, resource, requested, poll_interval, created_at, expires_at, polled_at, status, \
    user_id, agent_id, capabilities, decided_at, redeemed_at, family, replayed_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// The request whose device code hashes to `$1`.
const DEVICE_BY_HASH: &str = "SELECT hash, user_code, client_id, resource, requested, \
    poll_interval, created_at, expires_at, polled_at, status, user_id, agent_id, capabilities, \
    decided_at, redeemed_at, family, replayed_at FROM agent_auth_oauth_devices WHERE hash = $1";

/// The request whose user code hashes to `$1`.
const DEVICE_BY_USER_CODE: &str = "SELECT hash, user_code, client_id, resource, requested, \
    poll_interval, created_at, expires_at, polled_at, status, user_id, agent_id, capabilities, \
    decided_at, redeemed_at, family, replayed_at FROM agent_auth_oauth_devices \
    WHERE user_code = $1";

/// Stores the answer to the request `$1` if it is still pending and unexpired at `$7`.
const DECIDE_DEVICE: &str = "UPDATE agent_auth_oauth_devices SET status = $2, user_id = $3, \
    agent_id = $4, capabilities = $5, decided_at = $6 \
    WHERE hash = $1 AND status = 'pending' AND expires_at > $7";

/// The request `$1`, its row locked (changed to itself) until the transaction ends.
const LOCK_DEVICE: &str = "UPDATE agent_auth_oauth_devices SET polled_at = polled_at \
    WHERE hash = $1 \
    RETURNING hash, user_code, client_id, resource, requested, poll_interval, created_at, \
    expires_at, polled_at, status, user_id, agent_id, capabilities, decided_at, redeemed_at, \
    family, replayed_at";

/// What a poll changes of the request `$1`.
const STORE_POLL: &str = "UPDATE agent_auth_oauth_devices SET poll_interval = $2, \
    polled_at = $3, redeemed_at = $4, family = $5, replayed_at = $6 WHERE hash = $1";

/// The request in `row` (every column of `DEVICE_COLUMNS`).
fn device<B: Driver>(row: &B::Row) -> Result<DeviceAuthorization, StoreError> {
    let c = Columns::<B>(row);
    let interval = B::int(row, "poll_interval").map_err(store_error)?;
    let interval = u64::try_from(interval).map_err(|_| corrupt("interval"))?;
    Ok(DeviceAuthorization {
        hash: c.hash("hash")?,
        user_code: c.hash("user_code")?,
        client_id: c.text("client_id")?,
        resource: c.opt_text("resource")?,
        requested: c.capabilities("requested")?,
        interval: std::time::Duration::from_secs(interval),
        created_at: c.time("created_at")?,
        expires_at: c.time("expires_at")?,
        polled_at: c.opt_time("polled_at")?,
        status: DeviceStatus::parse(&c.text("status")?).ok_or_else(|| corrupt("device status"))?,
        user: c.opt_text("user_id")?.map(UserId::new),
        agent: c.opt_text("agent_id")?.map(AgentId::new),
        capabilities: c.capabilities("capabilities")?,
        decided_at: c.opt_time("decided_at")?,
        redeemed_at: c.opt_time("redeemed_at")?,
        family: c.opt_text("family")?.map(FamilyId::new),
        replayed_at: c.opt_time("replayed_at")?,
    })
}

/// An interval as stored: whole seconds.
fn seconds(interval: std::time::Duration) -> i64 {
    i64::try_from(interval.as_secs()).unwrap_or(i64::MAX)
}

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_device(&self, d: &DeviceAuthorization) -> Result<(), StoreError> {
        let inserted = sql(INSERT_DEVICE)
            .bind(d.hash.as_bytes().as_slice())
            .bind(d.user_code.as_bytes().as_slice())
            .bind(d.client_id.as_str())
            .bind(d.resource.as_deref())
            .bind(capabilities_to_json(&d.requested))
            .bind(seconds(d.interval))
            .bind(micros(d.created_at))
            .bind(micros(d.expires_at))
            .bind(d.polled_at.map(micros))
            .bind(d.status.as_str())
            .bind(d.user.as_ref().map(UserId::as_str))
            .bind(d.agent.as_ref().map(AgentId::as_str))
            .bind(capabilities_to_json(&d.capabilities))
            .bind(d.decided_at.map(micros))
            .bind(d.redeemed_at.map(micros))
            .bind(d.family.as_ref().map(FamilyId::as_str))
            .bind(d.replayed_at.map(micros))
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Conflict::Token.into()),
            Err(e) if is_foreign_key_violation(&e) => match &d.agent {
                Some(agent) => Err(self.missing(&d.client_id, agent).await),
                None => Err(NotFound::Client(d.client_id.clone()).into()),
            },
            Err(e) => Err(store_error(e)),
        }
    }

    async fn device_where(
        &self,
        statement: &'static str,
        hash: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let row = sql(statement)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(device::<B>).transpose()
    }

    pub(crate) async fn device(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.device_where(DEVICE_BY_HASH, hash).await
    }

    pub(crate) async fn device_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.device_where(DEVICE_BY_USER_CODE, user_code).await
    }

    pub(crate) async fn decide_device(
        &self,
        decided: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if decided.status == DeviceStatus::Pending {
            return Ok(false);
        }
        let changed = sql(DECIDE_DEVICE)
            .bind(decided.hash.as_bytes().as_slice())
            .bind(decided.status.as_str())
            .bind(decided.user.as_ref().map(UserId::as_str))
            .bind(decided.agent.as_ref().map(AgentId::as_str))
            .bind(capabilities_to_json(&decided.capabilities))
            .bind(decided.decided_at.map(micros))
            .bind(micros(now))
            .execute(&self.pool)
            .await;
        match changed {
            Ok(changed) => Ok(changed > 0),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::unknown_agent(
                decided.agent.as_ref().map_or("", AgentId::as_str),
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Locks the row, applies the poll's rules, stores what they say, in one transaction.
    pub(crate) async fn poll_device(&self, poll: &DevicePoll) -> Result<Polled, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let locked = sql(LOCK_DEVICE)
            .bind(poll.hash.as_bytes().as_slice())
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?;
        let Some(row) = locked else {
            tx.rollback().await.map_err(store_error)?;
            return Ok(Polled::Unknown);
        };
        let (answer, changed) = poll.apply(&device::<B>(&row)?);
        if let Some(d) = changed {
            sql(STORE_POLL)
                .bind(d.hash.as_bytes().as_slice())
                .bind(seconds(d.interval))
                .bind(d.polled_at.map(micros))
                .bind(d.redeemed_at.map(micros))
                .bind(d.family.as_ref().map(FamilyId::as_str))
                .bind(d.replayed_at.map(micros))
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_every_column() {
        assert_eq!(DEVICE_COLUMNS.split(", ").count(), 17);
        let placeholders: Vec<String> = (1..=17).map(|i| format!("${i}")).collect();
        assert!(INSERT_DEVICE.contains(&format!(
            "({DEVICE_COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        )));
        for statement in [DEVICE_BY_HASH, DEVICE_BY_USER_CODE, LOCK_DEVICE] {
            assert!(statement.contains(DEVICE_COLUMNS), "{statement}");
        }
    }

    #[test]
    fn an_answer_is_taken_by_a_pending_unexpired_request_only() {
        assert!(
            DECIDE_DEVICE.contains("WHERE hash = $1 AND status = 'pending' AND expires_at > $7")
        );
    }
}
