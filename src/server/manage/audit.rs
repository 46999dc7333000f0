//! `/api/agents/{slug}/audit`: an agent's trail.

use ::axum::extract::{Path, State};
use ::axum::routing::get;
use ::axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::state::{ManageState, invalid, target};
use crate::audit::AuditFilter;
use crate::principal::Principal;
use crate::server::body::Params;
use crate::server::error::ApiError;
use crate::server::views;
use crate::store::{Backend, Store};

/// Its route, under the state of [`manage_router`](super::manage_router).
pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/api/agents/{slug}/audit", get(audit::<B>))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    since: Option<String>,
    until: Option<String>,
    /// The newest this many (default [`DEFAULT_EVENTS`], at most [`MAX_EVENTS`]).
    last: Option<usize>,
}

/// Events an audit query answers unless asked for fewer or more.
const DEFAULT_EVENTS: usize = 1_000;
/// The most events one audit query answers: a trail of millions is read a page at a time.
const MAX_EVENTS: usize = 10_000;

/// `since`/`until`: an RFC 3339 instant, or a duration before `now` (`1h`, `30d`, `3600`), as
/// on the command line.
fn instant(
    text: &Option<String>,
    now: time::OffsetDateTime,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    let bad = || invalid("since/until: an RFC 3339 instant or a duration ago (45s, 15m, 12h, 30d)");
    text.as_deref()
        .map(|t| {
            if let Ok(at) =
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            {
                return Ok(at);
            }
            let ago = crate::server::parse_duration(t).map_err(|_| bad())?;
            time::Duration::try_from(ago)
                .ok()
                .and_then(|ago| now.checked_sub(ago))
                .ok_or_else(bad)
        })
        .transpose()
}

async fn audit<B>(
    State(state): State<ManageState<Store<B>>>,
    principal: Principal,
    Path(slug): Path<String>,
    Params(range): Params<Range>,
) -> Result<Json<Value>, ApiError>
where
    B: Backend,
{
    let (managed, agent) = target(&state, &principal, &slug).await?;
    let mut filter = AuditFilter::agent(agent.id.clone());
    let now = state.store.clock().now();
    filter.since = instant(&range.since, now)?;
    filter.until = instant(&range.until, now)?;
    let last = range.last.unwrap_or(DEFAULT_EVENTS);
    if last > MAX_EVENTS {
        return Err(invalid(format!("last: at most {MAX_EVENTS}")));
    }
    filter = filter.last(last);
    let events = managed.audit_events(&agent.id, filter).await?;
    Ok(Json(events.iter().map(views::event).collect()))
}
