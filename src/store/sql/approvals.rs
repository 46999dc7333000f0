//! Approvals in `agent_auth_approvals`: created, read, decided once, and spent a use at a
//! time by one atomic statement.

use std::fmt::Write as _;

use serde_json::Value;

use super::backend::{Arg, Driver, sql};
use super::{Core, queries, store_error};
use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval,
    Requested, canonical_json, standing, too_many,
};
use crate::principal::{AgentId, UserId};
use crate::store::StoreError;
use crate::store::prepare::{from_micros, micros};

fn corrupt(what: &str) -> StoreError {
    StoreError::unavailable(format!("stored approval {what} is not valid"))
}

fn count(value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|n| u32::try_from(n).map_err(|_| corrupt("uses")))
        .transpose()
}

/// The approval in `row` (every column of [`queries::APPROVAL_COLUMNS`]).
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
    pub(crate) async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError> {
        new.validate()?;
        let approval = new.into_pending(ApprovalId::random()?, self.now())?;
        Self::insert_approval(&approval, &self.pool).await?;
        Ok(approval)
    }

    /// A use of an approved approval of `new`'s binding spent, what stands for the binding,
    /// or `new` kept, in one transaction that holds the lock ([`Backend::APPROVAL_BEGIN`](super::backend::Backend::APPROVAL_BEGIN))
    /// from the look to the insert.
    pub(crate) async fn request_approval(&self, new: NewApproval) -> Result<Requested, StoreError> {
        new.validate()?;
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
                .bind(new.agent_id.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        // Read after the lock: the clock too, so that what expired while waiting counts.
        let now = self.now();
        // An approved one given meanwhile (after the caller's `consume_approval` found none)
        // is spent here, under the lock: no second pending approval while one stands.
        let used = sql(queries::CONSUME_APPROVAL)
            .bind(new.binding.as_str())
            .bind(micros(now))
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?;
        if let Some(row) = used {
            let id = B::text(&row, "id").map_err(store_error)?;
            let select = format!(
                "SELECT {} FROM agent_auth_approvals WHERE id = $1",
                queries::APPROVAL_COLUMNS
            );
            let row = sql(&select)
                .bind(id.as_str())
                .fetch_optional(&mut tx)
                .await
                .map_err(store_error)?
                .ok_or_else(|| corrupt("row"))?;
            let used = approval::<B>(&row)?;
            tx.commit().await.map_err(store_error)?;
            return Ok(Requested::Approved(used));
        }
        let select = format!(
            "SELECT {} FROM agent_auth_approvals WHERE binding = $1 \
             AND status IN ('pending', 'denied') AND expires_at > $2",
            queries::APPROVAL_COLUMNS
        );
        let rows = sql(&select)
            .bind(new.binding.as_str())
            .bind(micros(now))
            .fetch_all(&mut tx)
            .await
            .map_err(store_error)?;
        let found = rows
            .iter()
            .map(approval::<B>)
            .collect::<Result<Vec<_>, _>>()?;
        let pending = if new.max_pending.is_some() {
            let rows = sql(queries::PENDING_OF_AGENT)
                .bind(new.agent_id.as_str())
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
        let requested =
            match standing(&found, now).or_else(|| too_many(new.max_pending, pending, now)) {
                Some(requested) => requested,
                None => {
                    let approval = new.into_pending(ApprovalId::random()?, now)?;
                    Self::insert_approval(&approval, &mut tx).await?;
                    Requested::Created(approval)
                }
            };
        tx.commit().await.map_err(store_error)?;
        Ok(requested)
    }

    async fn insert_approval<'a>(
        approval: &'a Approval,
        on: impl super::backend::On<'a, Db = B>,
    ) -> Result<(), StoreError> {
        let chain: Vec<&str> = approval
            .delegation_chain
            .iter()
            .map(AgentId::as_str)
            .collect();
        sql(queries::INSERT_APPROVAL)
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
            .bind(None::<&str>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(approval.task_id.as_deref())
            .bind(approval.orchestrator.as_ref().map(AgentId::as_str))
            .execute(on)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn purge_approvals(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StoreError> {
        let cutoff = crate::store::prepare::purge_cutoff(self.now(), older_than);
        let purged = sql(queries::PURGE_APPROVALS)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    pub(crate) async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        let select = format!(
            "SELECT {} FROM agent_auth_approvals WHERE id = $1",
            queries::APPROVAL_COLUMNS
        );
        let row = sql(&select)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| approval::<B>(&row)).transpose()
    }

    pub(crate) async fn list_approvals(
        &self,
        filter: &ApprovalFilter,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut text = format!(
            "SELECT {} FROM agent_auth_approvals WHERE 1 = 1",
            queries::APPROVAL_COLUMNS
        );
        let mut args: Vec<Arg<'_>> = Vec::new();
        for (column, value) in [
            ("agent_id", filter.agent.as_ref().map(AgentId::as_str)),
            ("owner", filter.owner.as_ref().map(UserId::as_str)),
            (
                "binding",
                filter.binding.as_ref().map(ApprovalBinding::as_str),
            ),
        ] {
            if let Some(value) = value {
                args.push(Arg::from(value.to_owned()));
                let _ = write!(text, " AND {column} = ${}", args.len());
            }
        }
        if let Some(agents) = &filter.agents {
            if agents.is_empty() {
                return Ok(Vec::new());
            }
            text.push_str(" AND agent_id IN (");
            for (i, agent) in agents.iter().enumerate() {
                args.push(Arg::from(agent.as_str().to_owned()));
                let _ = write!(text, "{}${}", if i > 0 { ", " } else { "" }, args.len());
            }
            text.push(')');
        }
        let now = micros(self.now());
        if let Some(status) = filter.status {
            // Expired is derived from the clock: pending, approved or denied, and past it.
            let (stored, unexpired) = match status {
                ApprovalStatus::Pending => ("('pending')", Some(true)),
                ApprovalStatus::Approved => ("('approved')", Some(true)),
                ApprovalStatus::Denied => ("('denied')", Some(true)),
                ApprovalStatus::Used => ("('used')", None),
                _ => ("('pending', 'approved', 'denied')", Some(false)),
            };
            let _ = write!(text, " AND status IN {stored}");
            if let Some(unexpired) = unexpired {
                args.push(Arg::from(now));
                let op = if unexpired { ">" } else { "<=" };
                let _ = write!(text, " AND expires_at {op} ${}", args.len());
            }
        }
        text.push_str(" ORDER BY created_at DESC, id DESC");
        if let Some(last) = filter.last {
            args.push(Arg::from(i64::try_from(last).unwrap_or(i64::MAX)));
            let _ = write!(text, " LIMIT ${}", args.len());
        }
        let statement = args.into_iter().fold(sql(&text), |st, arg| st.bind(arg));
        let rows = statement.fetch_all(&self.pool).await.map_err(store_error)?;
        rows.iter().map(approval::<B>).collect()
    }

    pub(crate) async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError> {
        let now = self.now();
        let mut current = self
            .approval(id)
            .await?
            .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?;
        // The same checks as every store, on what was read; the statement below checks again
        // on what is there.
        decision.apply(&mut current, by, now)?;
        let window = match decision {
            Decision::Approve(_) => Some(micros(current.expires_at)),
            _ => None,
        };
        if decision == Decision::Revoke {
            let changed = sql(queries::REVOKE_APPROVAL)
                .bind(id.as_str())
                .bind(micros(now))
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            if changed == 0 {
                // Spent, or expired, meanwhile.
                let status = self
                    .approval(id)
                    .await?
                    .map_or(ApprovalStatus::Expired, |a| a.status_at(now));
                return Err(StoreError::ApprovalNotApproved {
                    id: id.to_string(),
                    status: status.as_str(),
                });
            }
            return Ok(current);
        }
        let changed = sql(queries::DECIDE_APPROVAL)
            .bind(id.as_str())
            .bind(current.status.as_str())
            .bind(by.as_str())
            .bind(micros(now))
            .bind(current.uses.map(i64::from))
            .bind(window)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        if changed == 0 {
            // Another decision (or expiry) came first: say which.
            let status = self
                .approval(id)
                .await?
                .map_or(ApprovalStatus::Expired, |a| a.status_at(now));
            return Err(StoreError::ApprovalNotPending {
                id: id.to_string(),
                status: status.as_str(),
            });
        }
        Ok(current)
    }

    pub(crate) async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError> {
        let row = sql(queries::CONSUME_APPROVAL)
            .bind(binding.as_str())
            .bind(micros(self.now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id = ApprovalId::from(B::text(&row, "id").map_err(store_error)?);
        self.approval(&id).await
    }
}
