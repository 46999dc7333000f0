//! `approval …`: the approvals supervised agents wait for.

use serde_json::{Value, json};
use tower_agent_auth::approval::{
    Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus, canonical_json,
};
use tower_agent_auth::audit::AuditWriter;
use tower_agent_auth::error::{NotFound, StoreError};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::views;
use tower_agent_auth::store::{Agent, Backend, Managed, Store};

use super::{Result, agent};
use crate::args::ApprovalCommand;
use crate::output::{count, out, print, print_one};

/// The agent an approval is of, by id (its slug is what people read).
async fn approval_agent<B: Backend>(store: &Store<B>, approval: &Approval) -> Result<Agent> {
    Ok(store
        .agent(&approval.agent_id)
        .await?
        .ok_or_else(|| StoreError::unknown_agent(&approval.agent_id))?)
}

/// An approval as the CLI shows it: the view, with its agent's slug.
async fn approval_row<B: Backend>(store: &Store<B>, approval: &Approval) -> Result<Value> {
    let mut row = views::approval(approval, store.clock().now());
    row["agent"] = match store.agent(&approval.agent_id).await? {
        Some(agent) => json!(&*agent.slug),
        None => Value::Null,
    };
    Ok(row)
}

/// `approval list|show|approve|deny`: through `Managed` as `--as` (or, deciding, the agent's
/// owner); without `--as`, a list shows every approval, as `agent list` shows every agent.
pub async fn run<B: Backend>(
    store: &Store<B>,
    writer: &AuditWriter,
    command: ApprovalCommand,
    json: bool,
) -> Result<()> {
    let as_user = |who: UserId| Managed::new(store, who).with_audit(writer);
    let by_id = |id: &str| -> Result<ApprovalId> {
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::from(NotFound::Approval(id.chars().take(64).collect())).into());
        }
        Ok(ApprovalId::from(id))
    };
    match command {
        ApprovalCommand::List {
            agent: slug,
            status,
            last,
            actor: who,
        } => {
            if last > tower_agent_auth::approval::MAX_LISTED {
                return Err(
                    format!("--last: at most {}", tower_agent_auth::approval::MAX_LISTED).into(),
                );
            }
            let mut filter = ApprovalFilter::all().last(last);
            if let Some(slug) = &slug {
                filter = filter.agent(agent(store, slug).await?.id);
            }
            if let Some(status) = &status {
                let status = ApprovalStatus::parse(status).ok_or_else(|| {
                    format!("invalid status {status:?}: pending, approved, denied, used or expired")
                })?;
                filter = filter.status(status);
            }
            let listed = match &who.acting_user {
                Some(user) => {
                    as_user(UserId::from(user.as_str()))
                        .approvals(&filter)
                        .await?
                }
                None => store.list_approvals(&filter).await?,
            };
            let mut rows = Vec::with_capacity(listed.len());
            // One lookup per agent, not per approval.
            let mut slugs = std::collections::HashMap::new();
            for approval in &listed {
                let mut row = views::approval(approval, store.clock().now());
                if !slugs.contains_key(&approval.agent_id) {
                    let slug = store
                        .agent(&approval.agent_id)
                        .await?
                        .map_or(Value::Null, |agent| json!(&*agent.slug));
                    slugs.insert(approval.agent_id.clone(), slug);
                }
                row["agent"] = slugs[&approval.agent_id].clone();
                if !json {
                    row["details"] = approval
                        .details
                        .as_ref()
                        .map_or(Value::Null, |d| json!(canonical_json(d)));
                    row["request"] = json!(format!("{} {}", approval.method, approval.path));
                }
                rows.push(row);
            }
            print(
                json,
                &rows,
                &[
                    "id",
                    "status",
                    "agent",
                    "request",
                    "capability",
                    "binding_message",
                    "details",
                    "expires_at",
                    "decided_by",
                ],
            )?;
        }
        ApprovalCommand::Show { id, actor: who } => {
            let id = by_id(&id)?;
            let approval = match &who.acting_user {
                Some(user) => as_user(UserId::from(user.as_str())).approval(&id).await?,
                None => store
                    .approval(&id)
                    .await?
                    .ok_or_else(|| StoreError::from(NotFound::Approval(id.to_string())))?,
            };
            print_one(json, &approval_row(store, &approval).await?)?;
        }
        ApprovalCommand::Approve {
            id,
            uses,
            valid_for,
            actor: who,
        } => {
            let id = by_id(&id)?;
            let mut bounds = ApprovalBounds::default().uses(uses);
            if let Some(window) = valid_for {
                bounds = bounds.valid_for(window);
            }
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::from(NotFound::Approval(id.to_string())))?;
            let target = approval_agent(store, &asked).await?;
            let approved = as_user(who.user_for(&target)).approve(&id, bounds).await?;
            if json {
                out(approval_row(store, &approved).await?)?;
            } else {
                out(format!(
                    "approval {id} approved: {} until {} ({})",
                    count(approved.uses.unwrap_or(1) as usize, "use"),
                    crate::output::cell(&views::time(Some(approved.expires_at))),
                    approved.binding_message
                ))?;
            }
        }
        ApprovalCommand::Deny { id, actor: who } => {
            let id = by_id(&id)?;
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::from(NotFound::Approval(id.to_string())))?;
            let target = approval_agent(store, &asked).await?;
            let denied = as_user(who.user_for(&target)).deny(&id).await?;
            if json {
                out(approval_row(store, &denied).await?)?;
            } else {
                out(format!("approval {id} denied ({})", denied.binding_message))?;
            }
        }
        ApprovalCommand::Revoke { id, actor: who } => {
            let id = by_id(&id)?;
            let asked = store
                .approval(&id)
                .await?
                .ok_or_else(|| StoreError::from(NotFound::Approval(id.to_string())))?;
            let target = approval_agent(store, &asked).await?;
            let revoked = as_user(who.user_for(&target)).revoke_approval(&id).await?;
            if json {
                out(approval_row(store, &revoked).await?)?;
            } else {
                out(format!(
                    "approval {id} revoked: it admits nothing more ({})",
                    revoked.binding_message
                ))?;
            }
        }
        ApprovalCommand::Purge { older_than } => {
            let purged = store.purge_approvals(older_than).await?;
            if json {
                out(json!({"purged": purged}))?;
            } else {
                out(format!("{} purged", count(purged, "approval")))?;
            }
        }
    }
    Ok(())
}
