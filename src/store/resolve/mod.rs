//! The resolution pipeline: the one place that decides, in one order, whether a stored token
//! admits a request, and builds its principal.
//!
//! A [`Backend`] implements only the I/O — find a token with its agent and the agent's parent
//! by hash, reserve and settle a use, record a use — and [`Store`] answers every request through
//! this pipeline. Memory, SQLite, PostgreSQL and a store of your own all go through here, so the
//! same state gives the same verdict and the same refusal reason on every backend.
//!
//! # The order of the checks
//!
//! A token failing several checks is refused for the first one:
//!
//! 1. no stored token has the hash → `unknown`;
//! 2. the token: revoked → `revoked`; its expiry passed, its task completed with its last use,
//!    or its task completed by [`complete_task`](super::Store::complete_task)
//!    (a recorded state, whatever the clock says) → `expired`; every use spent and none in flight → `exhausted`; for a delegated
//!    token, then each token up its chain, root first: gone, revoked, expired or spent →
//!    `delegator_refused`;
//! 3. its agent: the presented slug or the stored agent id does not match → `agent_mismatch`;
//!    disabled → `agent_disabled`; expired → `agent_expired`;
//! 4. the agent's parent, for a thread-scoped child: gone or disabled → `agent_disabled`; another
//!    agent than the child names → `agent_mismatch`; expired → `agent_expired`; then, for a
//!    delegated token, each link up the chain (it names the next link, its agent is the
//!    owner's, active and unexpired, and so is that agent's parent), and for a task token the
//!    orchestrator that minted it (still an active orchestrator of the owner, and not a
//!    thread-scoped child) →
//!    `delegator_refused`;
//! 5. the owner: not in the [`UserDirectory`](super::UserDirectory) → `owner_missing`;
//!    deactivated → `owner_inactive`; for a task token, the person it was minted for
//!    ([`TokenInfo::delegated_by`]) missing or deactivated → `delegator_refused`;
//! 6. a use-limited token — or one with a use-limited link up its chain — reserves one use of
//!    every limited link, atomically and all-or-nothing (of N concurrent requests for the last
//!    use, one gets it) → `exhausted` if one is left nowhere. While every remaining use is
//!    reserved by requests still in flight, the request waits for one of them to settle and
//!    then resolves again from step 1 (so a token revoked meanwhile is refused as revoked), for
//!    at most [`IN_FLIGHT_WAIT`] in all.
//!
//! Then the principal is built — owner role ∩ (task token) the delegating person's role ∩ the
//! orchestrator's policy ∩ for each link up the chain its agent's parent policy, agent policy
//! and token capabilities ∩ parent policy ∩ agent policy ∩ token capabilities — and the use is
//! recorded (last-used, coalesced by the backend). Its scopes and modes are the intersection
//! over the chain's agents.
//!
//! # When a use is spent
//!
//! A reserved use is settled by [`TokenResolver::settle_use`], which the layer calls once the
//! application has answered: a `401`, `403`, `404`, `405` or `429` — the application refused
//! the request before acting on it (a capability check, a route that does not exist, a rate
//! limit) — or an answer marked [`NotActed`](crate::layer::NotActed) releases the use; any other answer spends it (a `400`, `409` or `422` may come after a handler
//! acted, and so may a `5xx`), and so does a request dropped before its answer. The layer
//! settles the token it resolved; the backend settles every limited link of that token's
//! chain alike, so an ancestor's count holds every operation done under its authority. So a use-limited token counts the operations the
//! application let through, and the limit stays exact under concurrency and across nodes: a
//! use is never handed to two requests, and a request is refused as `exhausted` only when every
//! use is spent.
//!
//! # Reusing a verdict
//!
//! The pipeline decides afresh on every call. Reusing verdicts is the
//! [verdict cache](crate::cache)'s job, over any resolver (the in-memory store's included):
//! every principal carries [`ExecutionPrincipal::expires_at`](crate::ExecutionPrincipal::expires_at), the first expiry it depends
//! on, so that a cache never answers past it.
//!
//! [`Store::inspect`] runs steps 1–5 and reserves nothing: the peek a delegation takes at its
//! parent.

mod check;
mod principal;
#[cfg(test)]
mod tests;

use self::check::{
    check_agent, check_chain_agents, check_chain_tokens, check_delegating, check_owner,
    check_token, links, refused, refused_by_chain, root,
};
use self::principal::{Candidate, agent_principal, limited};
use super::Store;
use super::backend::{Backend, Reservation, StoredToken};
use super::directory::UserRecord;
use super::model::TokenInfo;
use crate::error::{InvalidReason, ResolveError};
use crate::principal::{Principal, TokenId};
use crate::resolver::{SettleFuture, TokenLookup, TokenResolver};
use crate::token::TokenFormat;

/// How long a request waits, in all, for a use in flight to come back before it is refused as
/// exhausted.
pub const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Steps 1–4: a token whose owner is to be looked up, or the refusal.
fn begin<B: Backend>(
    found: Result<Option<B::Record>, ResolveError>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Result<Candidate<B::Record>, ResolveError> {
    let record = match found {
        Ok(Some(record)) => record,
        Ok(None) => return Err(InvalidReason::Unknown.into()),
        Err(error) => return Err(error),
    };
    if let Err(reason) = check_token(&record, now_nanos) {
        return Err(refused(reason, &record, &record.agent()));
    }
    if let Err(at) = check_chain_tokens(&record, now_nanos) {
        return Err(refused_by_chain(at, &record, &record.agent()));
    }
    let agent = record.agent();
    let parent = agent.parent.as_ref().and_then(|_| record.parent());
    if let Err(reason) = check_agent(
        record.info(),
        &agent,
        parent.as_deref(),
        token.slug_bytes(),
        now_nanos,
    ) {
        return Err(refused(reason, &record, &agent));
    }
    if let Err(at) = check_chain_agents(&record, &agent.owner, now_nanos) {
        return Err(refused_by_chain(at, &record, &agent));
    }
    let root = root(&record);
    let orchestrator = root
        .info()
        .orchestrator
        .as_ref()
        .and_then(|_| record.orchestrator());
    let delegated_by = root.info().delegated_by.clone();
    Ok(Candidate {
        record,
        agent,
        parent,
        orchestrator,
        delegated_by,
    })
}

/// Step 5 and the principal.
fn admit_owner<R: StoredToken>(
    candidate: &Candidate<R>,
    owner: Result<Option<UserRecord>, crate::error::BoxError>,
    delegating: Option<Result<Option<UserRecord>, crate::error::BoxError>>,
) -> Result<Principal, ResolveError> {
    let Candidate { record, agent, .. } = candidate;
    let owner = owner.map_err(ResolveError::Unavailable)?;
    let owner = check_owner(owner).map_err(|reason| refused(reason, record, agent))?;
    let delegating = check_delegating(delegating)
        .map_err(|error| error.unwrap_or_else(|| refused_by_chain(None, record, agent)))?;
    Ok(agent_principal(&owner, delegating.as_ref(), candidate))
}

/// Step 6's answer turned into the verdict.
fn reserved<B: Backend>(
    store: &Store<B>,
    record: &B::Record,
    reservation: Result<Reservation, ResolveError>,
    principal: Principal,
    now_nanos: i128,
) -> Result<Principal, ResolveError> {
    match reservation? {
        Reservation::Reserved => {
            store.backend().record_use(record, now_nanos);
            Ok(principal)
        }
        // The caller waits and resolves again; past its wait, the use is not coming back.
        Reservation::Exhausted | Reservation::InFlight => {
            Err(refused(InvalidReason::Exhausted, record, &record.agent()))
        }
    }
}

/// Steps 1–5 without waiting, when the record and the people are at hand; `None` when they
/// must be awaited.
fn admit_now<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Option<Result<(B::Record, Principal), ResolveError>> {
    let found = store.backend().find_now(token.hash())?;
    let candidate = match begin::<B>(found, token, now_nanos) {
        Ok(candidate) => candidate,
        Err(error) => return Some(Err(error)),
    };
    let directory = &store.config().directory;
    let owner = directory.user_now(&candidate.agent.owner)?;
    let delegating = match &candidate.delegated_by {
        Some(person) => Some(directory.user_now(person)?),
        None => None,
    };
    Some(admit_owner(&candidate, owner, delegating).map(|principal| (candidate.record, principal)))
}

/// Steps 1–5, waiting for the backend and the directory as needed.
async fn admit<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Result<(B::Record, Principal), ResolveError> {
    let found = match store.backend().find_now(token.hash()) {
        Some(found) => found,
        None => store.backend().find(token.hash()).await,
    };
    let candidate = begin::<B>(found, token, now_nanos)?;
    let directory = &store.config().directory;
    let owner = match directory.user_now(&candidate.agent.owner) {
        Some(owner) => owner,
        None => directory.user(&candidate.agent.owner).await,
    };
    let delegating = match &candidate.delegated_by {
        Some(person) => Some(match directory.user_now(person) {
            Some(found) => found,
            None => directory.user(person).await,
        }),
        None => None,
    };
    let principal = admit_owner(&candidate, owner, delegating)?;
    Ok((candidate.record, principal))
}

/// Resolves `token` through `store`'s backend without waiting, when everything it needs is at hand
/// (the record, the owner, the use); `None` when [`resolve`] must be awaited.
pub(crate) fn resolve_now<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Option<Result<Principal, ResolveError>> {
    let now_nanos = store.config().clock.unix_nanos();
    let (record, principal) = match admit_now(store, token, now_nanos)? {
        Ok(admitted) => admitted,
        Err(error) => return Some(Err(error)),
    };
    if !limited(&record) {
        store.backend().record_use(&record, now_nanos);
        return Some(Ok(principal));
    }
    let reservation = store.backend().reserve_now(&record)?;
    if matches!(reservation, Ok(Reservation::InFlight)) {
        return None;
    }
    Some(reserved(store, &record, reservation, principal, now_nanos))
}

/// Resolves `token` through `store`'s backend: the checks in the order of this module's docs. A request
/// that finds every use left in flight waits for one to come back and then resolves again from
/// the start — a token revoked or an agent disabled meanwhile is refused — for at most
/// [`IN_FLIGHT_WAIT`] in all.
pub(crate) async fn resolve<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Result<Principal, ResolveError> {
    let mut give_up = None;
    let mut attempt = 0;
    loop {
        let now_nanos = store.config().clock.unix_nanos();
        let (record, principal) = admit(store, token, now_nanos).await?;
        if !limited(&record) {
            store.backend().record_use(&record, now_nanos);
            return Ok(principal);
        }
        let reservation = store.backend().reserve(&record).await;
        if matches!(reservation, Ok(Reservation::InFlight)) {
            let deadline =
                *give_up.get_or_insert_with(|| std::time::Instant::now() + IN_FLIGHT_WAIT);
            if std::time::Instant::now() < deadline {
                store.backend().settled(&record, attempt).await;
                attempt = attempt.saturating_add(1);
                continue;
            }
        }
        return reserved(store, &record, reservation, principal, now_nanos);
    }
}

/// What a token stands for now, read by [`Store::inspect`] without spending anything: what a
/// delegation from it may lend at most.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspection {
    /// The principal a request with the token would get now.
    pub principal: Principal,
    /// The token's record.
    pub token: TokenInfo,
    /// The earliest expiry up the chain: the token's, its agent's and its agent's parent's,
    /// and those of every link it was delegated through (and of the orchestrator).
    pub expires_at: Option<time::OffsetDateTime>,
    /// The fewest uses left up the chain (the token's own, and each limited link's); `None`
    /// when no link is limited.
    pub remaining_uses: Option<u64>,
}

/// Resolves `token` through `store`'s backend like [`resolve`] — every check, the same refusals — but
/// reserves and records no use: the peek a delegation takes at its parent token.
pub(crate) async fn inspect<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Result<Inspection, ResolveError> {
    let now_nanos = store.config().clock.unix_nanos();
    let (record, principal) = admit(store, token, now_nanos).await?;
    let mut expiries = vec![record.info().expires_at];
    let mut agents = vec![record.agent()];
    let mut remaining = record.uses().map(|uses| uses.remaining);
    for link in links(&record) {
        expiries.push(link.info().expires_at);
        expiries.push(
            link.completed_at()
                .and_then(|at| time::OffsetDateTime::from_unix_timestamp_nanos(at).ok()),
        );
        agents.push(link.agent());
        if let Some(uses) = link.uses() {
            remaining = Some(remaining.map_or(uses.remaining, |r| r.min(uses.remaining)));
        }
        if link.agent().parent.is_some() {
            expiries.push(link.parent().and_then(|p| p.expires_at));
        }
    }
    if let Some(parent) = record.agent().parent.as_ref().and_then(|_| record.parent()) {
        expiries.push(parent.expires_at);
    }
    let root = root(&record);
    if root.info().orchestrator.is_some() {
        expiries.push(record.orchestrator().and_then(|o| o.expires_at));
    }
    expiries.extend(agents.iter().map(|agent| agent.expires_at));
    Ok(Inspection {
        principal,
        token: record.info().clone(),
        expires_at: expiries.into_iter().flatten().min(),
        remaining_uses: remaining,
    })
}

/// Requests resolve through this pipeline over the backend.
#[async_trait::async_trait]
impl<B: Backend> TokenResolver for Store<B> {
    fn token_format(&self) -> &TokenFormat {
        &self.config().format
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        resolve_now(self, token)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        resolve(self, token).await
    }

    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        self.backend().settle(token, spent, self.now())
    }

    fn touch(&self, principal: &Principal) {
        if let Some(token) = principal.token_id() {
            let now = self.config().clock.unix_nanos();
            self.backend().touch(token, now);
        }
    }
}

impl<B: Backend> Store<B> {
    /// Resolves `token` with every check of a request, and the same refusals, but reserves and
    /// records no use: what the token stands for now, and what a delegation from it may lend
    /// at most.
    pub async fn inspect(&self, token: &TokenLookup<'_>) -> Result<Inspection, ResolveError> {
        inspect(self, token).await
    }
}
