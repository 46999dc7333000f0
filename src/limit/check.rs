//! What the limiter decides: which limits a request's principal is held to ([`request`]), and
//! the verdict of their counts. The token's limit is counted first and the agent's only when
//! the token's admits, so a request over its token's limit spends none of its agent's budget
//! (that other tokens of the agent share). A request admitted by its token's limit and refused
//! by its agent's has counted one hit of its token's: the token is held back by its agent in
//! that window anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Request;

use super::{Limit, LimitKind, RateCounter, RateLimitRejection, RateLimited, RateLimits};
use crate::principal::Principal;

/// The limiter's settings, shared by every service it builds.
pub(crate) struct Shared {
    pub(crate) limits: RateLimits,
    pub(crate) counter: Arc<dyn RateCounter>,
}

/// The counting of a request's limits in flight: `Ok` admits it.
pub(crate) type Check = Pin<Box<dyn Future<Output = Result<(), RateLimitRejection>> + Send>>;

/// The limits `request` is held to, as a count to wait for; `None` when none applies (no
/// principal — the request passes untouched —, a session, no rate configured).
pub(crate) fn request<B>(shared: &Arc<Shared>, request: &Request<B>) -> Option<Check> {
    let principal = request.extensions().get::<Principal>()?;
    let agent = principal.agent_ref()?;
    let agent_type = agent.agent_type();
    let token = principal.token_id().and_then(|token| {
        let rate = shared.limits.token_rate(agent_type)?;
        Some((
            token.as_str().into(),
            Limit {
                kind: LimitKind::Token,
                rate,
            },
        ))
    });
    let agent = shared.limits.agent_rate(agent_type).map(|rate| {
        let limit = Limit {
            kind: LimitKind::Agent,
            rate,
        };
        (agent.id().as_str().into(), limit)
    });
    if token.is_none() && agent.is_none() {
        return None;
    }
    let counter = shared.counter.clone();
    let limits: [Option<(Box<str>, Limit)>; 2] = [token, agent];
    Some(Box::pin(async move {
        for (id, limit) in limits.into_iter().flatten() {
            let hit = counter
                .hit(limit.kind, &id, limit.rate.window())
                .await
                .map_err(|_| RateLimitRejection::Unavailable)?;
            if hit.count > limit.rate.requests() {
                return Err(RateLimitRejection::Limited(RateLimited::new(
                    limit,
                    hit.remaining,
                )));
            }
        }
        Ok(())
    }))
}
