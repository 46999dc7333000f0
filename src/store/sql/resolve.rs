//! The request path: the token lookup, reserving and settling a use, and the last-used times
//! written behind the requests (the core's side of [`Backend`](crate::store::Backend); the checks are
//! [`store::resolve`](crate::store::resolve)'s).

use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Duration;

use time::OffsetDateTime;

use super::dialect::{Driver, sql};
use super::error::{resolve_error, retriable};
use super::{Core, rows};
use crate::error::ResolveError;
use crate::principal::TokenId;
use crate::resolver::SettleFuture;
use crate::store::backend::{FoundToken, Reservation, Uses};
use crate::store::validate::micros;
use crate::token::TokenHash;

/// What a resolve row holds: a token (`t`), its agent (`a`), the agent's parent (`p`: for a
/// child agent, the parent's status, expiry and policy bound the child) and the orchestrator
/// that minted it (`o`: for a task token). Each table's columns carry the prefix of its role (`token_`, `agent_`, `parent_`,
/// `orchestrator_`), so that no name is ambiguous and no position matters.
const COLUMNS: &str = "\
    t.id AS token_id, t.agent_id AS token_agent_id, t.display_prefix AS token_display_prefix, \
    t.label AS token_label, t.capabilities AS token_capabilities, \
    t.created_at AS token_created_at, t.created_by AS token_created_by, \
    t.expires_at AS token_expires_at, t.last_used_at AS token_last_used_at, \
    t.revoked_at AS token_revoked_at, t.max_operations AS token_max_operations, \
    t.operations_remaining AS token_operations_remaining, \
    t.expires_on_completion AS token_expires_on_completion, t.task_id AS token_task_id, \
    t.intent AS token_intent, t.orchestrator AS token_orchestrator, \
    t.environment AS token_environment, t.delegated_by AS token_delegated_by, \
    t.delegation_parent AS token_delegation_parent, \
    t.delegation_depth AS token_delegation_depth, t.completed_at AS token_completed_at, \
    t.operations_in_flight AS token_operations_in_flight, \
    t.resource AS token_resource, t.client_id AS token_client_id, \
    a.id AS agent_id, a.slug AS agent_slug, a.owner AS agent_owner, \
    a.agent_type AS agent_agent_type, a.status AS agent_status, a.policy AS agent_policy, \
    a.created_at AS agent_created_at, a.expires_at AS agent_expires_at, \
    a.parent_id AS agent_parent_id, a.scopes AS agent_scopes, a.modes AS agent_modes, \
    a.last_used_at AS agent_last_used_at, a.last_rotated_at AS agent_last_rotated_at, \
    a.orchestrator AS agent_orchestrator, \
    p.id AS parent_id, p.slug AS parent_slug, p.owner AS parent_owner, \
    p.agent_type AS parent_agent_type, p.status AS parent_status, p.policy AS parent_policy, \
    p.created_at AS parent_created_at, p.expires_at AS parent_expires_at, \
    p.parent_id AS parent_parent_id, p.scopes AS parent_scopes, p.modes AS parent_modes, \
    p.last_used_at AS parent_last_used_at, p.last_rotated_at AS parent_last_rotated_at, \
    p.orchestrator AS parent_orchestrator, \
    o.id AS orchestrator_id, o.slug AS orchestrator_slug, o.owner AS orchestrator_owner, \
    o.agent_type AS orchestrator_agent_type, o.status AS orchestrator_status, \
    o.policy AS orchestrator_policy, o.created_at AS orchestrator_created_at, \
    o.expires_at AS orchestrator_expires_at, o.parent_id AS orchestrator_parent_id, \
    o.scopes AS orchestrator_scopes, o.modes AS orchestrator_modes, \
    o.last_used_at AS orchestrator_last_used_at, \
    o.last_rotated_at AS orchestrator_last_rotated_at, \
    o.orchestrator AS orchestrator_orchestrator";

/// The token with the hash `$1` and its three agents, in [`COLUMNS`].
static RESOLVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM agent_auth_tokens t \
         JOIN agent_auth_agents a ON a.id = t.agent_id \
         LEFT JOIN agent_auth_agents p ON p.id = a.parent_id \
         LEFT JOIN agent_auth_agents o ON o.id = t.orchestrator \
         WHERE t.hash = $1"
    )
});

/// The tokens a delegated token `$1` was delegated from, each with the same [`COLUMNS`], nearest first (`chain_step` 1 is the delegator), at most
/// [`MAX_DELEGATION_DEPTH_LIMIT`](crate::store::MAX_DELEGATION_DEPTH_LIMIT) (64) of them. An
/// ancestor that is gone ends the walk: the pipeline then finds the chain shorter than the
/// token's depth and refuses it.
static DELEGATORS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE chain(id, step) AS ( \
             SELECT delegation_parent, 1 FROM agent_auth_tokens \
             WHERE id = $1 AND delegation_parent IS NOT NULL \
             UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
             JOIN chain c ON d.id = c.id WHERE d.delegation_parent IS NOT NULL AND c.step < 64) \
         SELECT {COLUMNS}, c.step AS chain_step \
         FROM chain c JOIN agent_auth_tokens t ON t.id = c.id \
         JOIN agent_auth_agents a ON a.id = t.agent_id \
         LEFT JOIN agent_auth_agents p ON p.id = a.parent_id \
         LEFT JOIN agent_auth_agents o ON o.id = t.orchestrator \
         ORDER BY c.step"
    )
});

/// Reserves a use of the token `$1`. Atomic: of concurrent requests for the last use, exactly
/// one gets a row.
const RESERVE: &str = "UPDATE agent_auth_tokens \
    SET operations_remaining = operations_remaining - 1, \
        operations_in_flight = operations_in_flight + 1 \
    WHERE id = $1 AND operations_remaining > 0 AND revoked_at IS NULL \
    RETURNING operations_remaining";

/// The uses left and in flight of the token `$1`, both from one row version: a release moves a
/// use from one to the other.
const USES: &str = "SELECT operations_remaining, operations_in_flight \
    FROM agent_auth_tokens WHERE id = $1";

/// The record of a resolve row: the token, its agent, the agent's parent and the orchestrator.
fn found<B: Driver>(row: &B::Row) -> Result<FoundToken, String> {
    let info = rows::token::<B>(row, "token_")?;
    let agent = rows::agent::<B>(row, "agent_")?;
    let parent = rows::opt_agent::<B>(row, "parent_")?;
    let orchestrator = rows::opt_agent::<B>(row, "orchestrator_")?;
    let in_flight = B::int(row, "token_operations_in_flight").map_err(|e| e.to_string())?;
    let uses = info.operations_remaining.map(|remaining| Uses {
        remaining,
        in_flight: u64::try_from(in_flight).unwrap_or(0),
    });
    Ok(FoundToken::new(info, agent)
        .with_parent(parent.map(Arc::new))
        .with_orchestrator(orchestrator.map(Arc::new))
        .with_uses(uses))
}

impl<B: Driver> Core<B> {
    pub(crate) async fn find(&self, hash: &TokenHash) -> Result<Option<FoundToken>, ResolveError> {
        let row = sql(&RESOLVE)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(resolve_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut record = found::<B>(&row).map_err(ResolveError::corrupt)?;
        if record.info.delegation_parent.is_some() {
            let rows = sql(&DELEGATORS)
                .bind(record.info.id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(resolve_error)?;
            let mut chain = rows
                .iter()
                .map(|row| found::<B>(row).map_err(ResolveError::corrupt))
                .collect::<Result<Vec<_>, _>>()?;
            // Nearest first as walked; the pipeline reads the chain root first.
            chain.reverse();
            record.chain = chain;
        }
        Ok(Some(record))
    }

    pub(crate) async fn reserve(&self, record: &FoundToken) -> Result<Reservation, ResolveError> {
        let limited: Vec<&str> = record
            .links()
            .filter(|link| link.uses.is_some())
            .map(|link| link.info.id.as_str())
            .collect();
        let token = match limited.as_slice() {
            [] => return Ok(Reservation::Reserved),
            [one] => {
                let reserved = sql(RESERVE)
                    .bind(*one)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(resolve_error)?;
                if reserved.is_some() {
                    return Ok(Reservation::Reserved);
                }
                *one
            }
            // One use of every limited link, in one transaction: all of them or none. The
            // links are locked root first, as a spend or a release locks them.
            links => {
                let mut attempt = 0;
                loop {
                    match self.reserve_links(links).await {
                        Ok(None) => return Ok(Reservation::Reserved),
                        Ok(Some(link)) => break link,
                        Err(error) if retriable(&error) && attempt + 1 < SETTLE_ATTEMPTS => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                        }
                        Err(error) => return Err(resolve_error(error)),
                    }
                }
            }
        };
        // None reserved: refused, unless a use may still come back — one in flight, or one
        // released since the statement ran. The pipeline then resolves again from the start,
        // so a token revoked meanwhile is refused as revoked (the statement skips revoked
        // rows), never retried here.
        let uses = sql(USES)
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(resolve_error)?;
        let uses = uses
            .map(|row| {
                Ok::<_, sqlx::Error>((
                    B::opt_int(&row, "operations_remaining")?,
                    B::int(&row, "operations_in_flight")?,
                ))
            })
            .transpose()
            .map_err(resolve_error)?;
        Ok(match uses {
            Some((Some(remaining), in_flight)) if remaining > 0 || in_flight > 0 => {
                Reservation::InFlight
            }
            _ => Reservation::Exhausted,
        })
    }

    pub(crate) fn settle(
        &self,
        token: &TokenId,
        spent: bool,
        now: OffsetDateTime,
    ) -> Option<SettleFuture> {
        let pool = self.pool.clone();
        let token = token.to_string();
        let now = micros(now);
        let write = async move {
            for attempt in 0..SETTLE_ATTEMPTS {
                let statement = if spent {
                    sql(B::SPEND).bind(now)
                } else {
                    sql(B::RELEASE)
                };
                match statement.bind(token.as_str()).execute(&pool).await {
                    // A statement the database undid (a lock it could not take, a deadlock
                    // broken, a timeout) is tried again: given up, the use would stay
                    // reserved — spent, and counted in flight for good.
                    Err(error) if retriable(&error) && attempt + 1 < SETTLE_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                    }
                    // Otherwise the use stays reserved, i.e. spent: the limit is never
                    // exceeded.
                    _ => break,
                }
            }
        };
        Some(Box::pin(FinishOnDrop(Some(Box::pin(write)))))
    }

    pub(crate) fn touch(&self, token: &TokenId, now_nanos: i128) {
        self.last_used
            .record(token, i64::try_from(now_nanos / 1_000).unwrap_or(i64::MAX));
    }
}

/// A write that finishes in the background if it is dropped unfinished (the request's future
/// was dropped): a settled use is never left to chance.
struct FinishOnDrop(Option<SettleFuture>);

impl std::future::Future for FinishOnDrop {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(write) = self.0.as_mut() {
            std::task::ready!(write.as_mut().poll(cx));
            self.0 = None;
        }
        std::task::Poll::Ready(())
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let (Some(write), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(write);
        }
    }
}

/// How often a settle write (or a reservation over a chain) that the database undid is tried.
const SETTLE_ATTEMPTS: u32 = 5;

impl<B: Driver> Core<B> {
    /// Reserves one use of each of `links` (root first) in one transaction; the first link
    /// with none left, if any (then nothing is reserved).
    async fn reserve_links<'l>(&self, links: &[&'l str]) -> Result<Option<&'l str>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for link in links {
            if sql(RESERVE)
                .bind(*link)
                .fetch_optional(&mut tx)
                .await?
                .is_none()
            {
                tx.rollback().await?;
                return Ok(Some(*link));
            }
        }
        tx.commit().await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a statement selects, between `SELECT` and `FROM`.
    fn selected(statement: &str) -> &str {
        let from = statement.find("SELECT t.id").unwrap() + "SELECT ".len();
        let to = statement[from..].find(" FROM").unwrap();
        &statement[from..from + to]
    }

    #[test]
    fn every_record_is_read_under_the_prefix_of_its_role() {
        let tokens = "id, agent_id, display_prefix, label, capabilities, created_at, created_by, \
            expires_at, last_used_at, revoked_at, max_operations, operations_remaining, \
            expires_on_completion, task_id, intent, orchestrator, environment, delegated_by, \
            delegation_parent, delegation_depth, completed_at, operations_in_flight, resource, \
            client_id";
        let agents = "id, slug, owner, agent_type, status, policy, created_at, expires_at, \
            parent_id, scopes, modes, last_used_at, last_rotated_at, orchestrator";
        let mut expected: Vec<String> = tokens
            .split(", ")
            .map(|c| format!("t.{c} AS token_{c}"))
            .collect();
        for (table, prefix) in [("a", "agent_"), ("p", "parent_"), ("o", "orchestrator_")] {
            expected.extend(
                agents
                    .split(", ")
                    .map(|c| format!("{table}.{c} AS {prefix}{c}")),
            );
        }
        let expected = expected.join(", ");
        assert_eq!(selected(&RESOLVE).trim(), expected);
        assert_eq!(
            selected(&DELEGATORS).trim(),
            format!("{expected}, c.step AS chain_step")
        );
        assert!(!RESOLVE.contains('?'));
    }

    #[test]
    fn chain_walks_reach_the_deepest_chain_issued() {
        let limit = format!("c.step < {}", crate::store::MAX_DELEGATION_DEPTH_LIMIT);
        assert!(DELEGATORS.contains(&limit));
    }
}
