//! Approvals in `agent_auth_approvals`: created, read, decided once, and spent a use at a
//! time by one atomic statement.

use serde_json::Value;

use time::OffsetDateTime;

use super::Core;
use super::dialect::{Driver, sql};
use super::error::store_error;
use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested, canonical_json,
};
use crate::error::StoreError;
use crate::principal::{AgentId, UserId};
use crate::store::validate::{from_micros, micros};

/// The columns of `agent_auth_approvals`, in insert order.
const APPROVAL_COLUMNS: &str = "id, binding, agent_id, owner, token_id, \
    delegation_chain, method, path, capability, details, binding_message, status, created_at, \
    expires_at, decided_by, decided_at, uses, uses_remaining, task_id, orchestrator";

const INSERT_APPROVAL: &str = "INSERT INTO agent_auth_approvals (id, binding, \
    agent_id, owner, token_id, delegation_chain, method, path, capability, details, \
    binding_message, status, created_at, expires_at, decided_by, decided_at, uses, \
    uses_remaining, task_id, orchestrator) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
    $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

/// The expiries of the pending, unexpired approvals of agent `$1` at `$2` (by the index on
/// agent, status, created).
const PENDING_OF_AGENT: &str = "SELECT expires_at FROM agent_auth_approvals \
    WHERE agent_id = $1 AND status = 'pending' AND expires_at > $2";

/// Deletes the approvals that expired before `$1`: pending, approved, denied or used alike
/// (every approval expires at most a day after its decision), none still usable.
const PURGE_APPROVALS: &str = "DELETE FROM agent_auth_approvals WHERE expires_at < $1";

/// One approval by id (`$1`).
const APPROVAL_BY_ID: &str = "SELECT id, binding, agent_id, owner, token_id, \
    delegation_chain, method, path, capability, details, binding_message, status, created_at, \
    expires_at, decided_by, decided_at, uses, uses_remaining, task_id, orchestrator \
    FROM agent_auth_approvals WHERE id = $1";

/// The approvals of binding `$1` that may stand at `$2`: pending or denied, unexpired.
const STANDING_OF_BINDING: &str = "SELECT id, binding, agent_id, owner, token_id, \
    delegation_chain, method, path, capability, details, binding_message, status, created_at, \
    expires_at, decided_by, decided_at, uses, uses_remaining, task_id, orchestrator \
    FROM agent_auth_approvals WHERE binding = $1 AND status IN ('pending', 'denied') \
    AND expires_at > $2";

/// A decision (`$2` status, `$3` decider, `$4` instant, `$5` uses, `$6` uses left, `$7`
/// expiry), stored only while the approval (`$1`) stands as `$8` and unexpired at `$9`: the
/// database, not a read before, says whether it still does, so two deciders cannot both win.
const DECIDE_APPROVAL: &str = "UPDATE agent_auth_approvals SET status = $2, \
    decided_by = $3, decided_at = $4, uses = $5, uses_remaining = $6, expires_at = $7 \
    WHERE id = $1 AND status = $8 AND expires_at > $9";

/// Spends one use of the oldest approved, unexpired approval with binding `$1` at `$2`, in
/// one statement: the conditions are checked again on the row it updates (PostgreSQL re-reads
/// a row another transaction changed meanwhile; SQLite has one writer), so a use is never
/// spent twice.
const CONSUME_APPROVAL: &str = "UPDATE agent_auth_approvals \
    SET uses_remaining = uses_remaining - 1, \
        status = CASE WHEN uses_remaining = 1 THEN 'used' ELSE status END \
    WHERE id = (SELECT id FROM agent_auth_approvals WHERE binding = $1 AND status = 'approved' \
        AND expires_at > $2 AND uses_remaining > 0 ORDER BY created_at, id LIMIT 1) \
      AND status = 'approved' AND expires_at > $2 AND uses_remaining > 0 \
    RETURNING id";

fn corrupt(what: &str) -> StoreError {
    StoreError::unavailable(format!("stored approval {what} is not valid"))
}

fn count(value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|n| u32::try_from(n).map_err(|_| corrupt("uses")))
        .transpose()
}

/// The approval in `row` (every column of [`APPROVAL_COLUMNS`]).
fn approval<B: Driver>(row: &B::Row) -> Result<Approval, StoreError> {
    let text = |c: &str| B::text(row, c).map_err(store_error);
    let opt_text = |c: &str| B::opt_text(row, c).map_err(store_error);
    let int = |c: &str| B::int(row, c).map_err(store_error);
    let opt_int = |c: &str| B::opt_int(row, c).map_err(store_error);
    let chain: Vec<String> =
        serde_json::from_str(&text("delegation_chain")?).map_err(|_| corrupt("chain"))?;
    let details = opt_text("details")?
        .map(|t| serde_json::from_str::<Value>(&t).map_err(|_| corrupt("details")))
        .transpose()?;
    let status = text("status")?;
    Ok(Approval {
        id: ApprovalId::from(text("id")?),
        binding: ApprovalBinding::from_stored(text("binding")?),
        agent_id: AgentId::from(text("agent_id")?),
        owner: UserId::from(text("owner")?),
        token_id: text("token_id")?.into(),
        delegation_chain: chain.into_iter().map(AgentId::from).collect(),
        method: text("method")?,
        path: text("path")?,
        capability: text("capability")?,
        details,
        binding_message: text("binding_message")?,
        status: ApprovalStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        created_at: from_micros(int("created_at")?),
        expires_at: from_micros(int("expires_at")?),
        decided_by: opt_text("decided_by")?.map(UserId::from),
        decided_at: opt_int("decided_at")?.map(from_micros),
        uses: count(opt_int("uses")?)?,
        uses_remaining: count(opt_int("uses_remaining")?)?,
        task_id: opt_text("task_id")?,
        orchestrator: opt_text("orchestrator")?.map(AgentId::from),
    })
}

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        Self::insert(approval, &self.pool).await
    }

    /// The approval with this id, on the pool or in a transaction.
    async fn read<'a>(
        id: &'a str,
        on: impl super::dialect::On<'a, Db = B>,
    ) -> Result<Option<Approval>, StoreError> {
        let row = sql(APPROVAL_BY_ID)
            .bind(id)
            .fetch_optional(on)
            .await
            .map_err(store_error)?;
        row.map(|row| approval::<B>(&row)).transpose()
    }

    /// A use of an approved approval of the request's binding spent, what stands for the
    /// binding, or the new one kept, in one transaction that holds the lock
    /// ([`Dialect::APPROVAL_BEGIN`](super::dialect::Dialect::APPROVAL_BEGIN)) from the look to
    /// the insert.
    pub(crate) async fn request_approval(
        &self,
        request: &ApprovalRequest,
    ) -> Result<Requested, StoreError> {
        let mut tx = self
            .pool
            .begin_with(B::APPROVAL_BEGIN)
            .await
            .map_err(store_error)?;
        if let Some(lock) = B::APPROVAL_LOCK {
            // The binding sums up the token, and so the agent: one agent's requests (of all
            // its tokens, delegated ones included) wait for each other, which serialises those
            // of one binding and bounds the agent's pending ones.
            sql(lock)
                .bind(request.agent().as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        // Read after the lock, so that what expired while waiting counts.
        let now = request.now();
        // An approved one given meanwhile (after the caller's `consume_approval` found none)
        // is spent here, under the lock: no second pending approval while one stands.
        let used = sql(CONSUME_APPROVAL)
            .bind(request.binding().as_str())
            .bind(micros(now))
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?;
        if let Some(row) = used {
            let id = B::text(&row, "id").map_err(store_error)?;
            let used = Self::read(&id, &mut tx)
                .await?
                .ok_or_else(|| corrupt("row"))?;
            tx.commit().await.map_err(store_error)?;
            return Ok(Requested::Approved(used));
        }
        let rows = sql(STANDING_OF_BINDING)
            .bind(request.binding().as_str())
            .bind(micros(now))
            .fetch_all(&mut tx)
            .await
            .map_err(store_error)?;
        let found = rows
            .iter()
            .map(approval::<B>)
            .collect::<Result<Vec<_>, _>>()?;
        let pending = if request.counts_pending() {
            let rows = sql(PENDING_OF_AGENT)
                .bind(request.agent().as_str())
                .bind(micros(now))
                .fetch_all(&mut tx)
                .await
                .map_err(store_error)?;
            rows.iter()
                .map(|row| B::int(row, "expires_at").map(from_micros))
                .collect::<Result<Vec<_>, _>>()
                .map_err(store_error)?
        } else {
            Vec::new()
        };
        let requested = request.decide(&found, &pending, now)?;
        if let Requested::Created(approval) = &requested {
            Self::insert(approval, &mut tx).await?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(requested)
    }

    async fn insert<'a>(
        approval: &'a Approval,
        on: impl super::dialect::On<'a, Db = B>,
    ) -> Result<(), StoreError> {
        let chain: Vec<&str> = approval
            .delegation_chain
            .iter()
            .map(AgentId::as_str)
            .collect();
        sql(INSERT_APPROVAL)
            .bind(approval.id.as_str())
            .bind(approval.binding.as_str())
            .bind(approval.agent_id.as_str())
            .bind(approval.owner.as_str())
            .bind(approval.token_id.as_str())
            .bind(serde_json::to_string(&chain).map_err(StoreError::unavailable)?)
            .bind(approval.method.as_str())
            .bind(approval.path.as_str())
            .bind(approval.capability.as_str())
            .bind(approval.details.as_ref().map(canonical_json))
            .bind(approval.binding_message.as_str())
            .bind(approval.status.as_str())
            .bind(micros(approval.created_at))
            .bind(micros(approval.expires_at))
            .bind(approval.decided_by.as_ref().map(UserId::as_str))
            .bind(approval.decided_at.map(micros))
            .bind(approval.uses.map(i64::from))
            .bind(approval.uses_remaining.map(i64::from))
            .bind(approval.task_id.as_deref())
            .bind(approval.orchestrator.as_ref().map(AgentId::as_str))
            .execute(on)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn purge_approvals(
        &self,
        before: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let purged = sql(PURGE_APPROVALS)
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    pub(crate) async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        Self::read(id.as_str(), &self.pool).await
    }

    pub(crate) async fn approvals(
        &self,
        filter: &ApprovalFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut statement = sql("SELECT ");
        statement
            .push(APPROVAL_COLUMNS)
            .push(" FROM agent_auth_approvals WHERE 1 = 1");
        for (column, value) in [
            ("agent_id", filter.agent.as_ref().map(AgentId::as_str)),
            ("owner", filter.owner.as_ref().map(UserId::as_str)),
            (
                "binding",
                filter.binding.as_ref().map(ApprovalBinding::as_str),
            ),
        ] {
            if let Some(value) = value {
                statement
                    .push(" AND ")
                    .push(column)
                    .push(" = ")
                    .push_bind(value);
            }
        }
        if let Some(agents) = &filter.agents {
            if agents.is_empty() {
                return Ok(Vec::new());
            }
            statement.push(" AND agent_id IN (");
            for (i, agent) in agents.iter().enumerate() {
                statement
                    .push(if i > 0 { ", " } else { "" })
                    .push_bind(agent.as_str());
            }
            statement.push(")");
        }
        if let Some(status) = filter.status {
            // Expired is derived from the clock: pending, approved or denied, and past it.
            let (stored, unexpired) = match status {
                ApprovalStatus::Pending => ("('pending')", Some(true)),
                ApprovalStatus::Approved => ("('approved')", Some(true)),
                ApprovalStatus::Denied => ("('denied')", Some(true)),
                ApprovalStatus::Used => ("('used')", None),
                _ => ("('pending', 'approved', 'denied')", Some(false)),
            };
            statement.push(" AND status IN ").push(stored);
            if let Some(unexpired) = unexpired {
                let op = if unexpired { " > " } else { " <= " };
                statement
                    .push(" AND expires_at")
                    .push(op)
                    .push_bind(micros(now));
            }
        }
        statement.push(" ORDER BY created_at DESC, id DESC");
        if let Some(last) = filter.last {
            statement
                .push(" LIMIT ")
                .push_bind(i64::try_from(last).unwrap_or(i64::MAX));
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(store_error)?;
        rows.iter().map(approval::<B>).collect()
    }

    /// Stores a decision only while the approval stands as `from` and unexpired (`now`): the
    /// database, not a read before, says whether it still does, so two deciders cannot both
    /// win.
    pub(crate) async fn decide_approval(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = sql(DECIDE_APPROVAL)
            .bind(decided.id.as_str())
            .bind(decided.status.as_str())
            .bind(decided.decided_by.as_ref().map(UserId::as_str))
            .bind(decided.decided_at.map(micros))
            .bind(decided.uses.map(i64::from))
            .bind(decided.uses_remaining.map(i64::from))
            .bind(micros(decided.expires_at))
            .bind(from.as_str())
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(changed > 0)
    }

    pub(crate) async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Result<Option<Approval>, StoreError> {
        let row = sql(CONSUME_APPROVAL)
            .bind(binding.as_str())
            .bind(micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id = B::text(&row, "id").map_err(store_error)?;
        Self::read(&id, &self.pool).await
    }
}
