//! `/audit`: the trail of the agents the person may read it of (owner, operator or admin, as
//! `GET /api/agents/{slug}/audit`), filtered by agent, action, outcome and time, newest first,
//! a page at a time.

use ::axum::Router;
use ::axum::extract::{Query, State};
use ::axum::response::Response;
use ::axum::routing::get;
use askama::Template;
use http::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;

use super::agent_names::AgentNames;
use super::{Chrome, Viewer, message, render};
use crate::audit::{AuditAction, AuditEvent, AuditFilter, Outcome};
use crate::error::{InvalidReason, StoreError};
use crate::server::ManageState;
use crate::server::manage::{managed, visible_agents};
use crate::store::{Agent, Backend, Operation, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/audit", get(page::<B>))
}

/// Events a page shows.
const PAGE_SIZE: usize = 50;
/// The deepest page: a page reads the newest `page × PAGE_SIZE + 1` events, and the REST API
/// answers at most 10,000 a query; older ones are reached with `until`.
const MAX_PAGE: usize = 10_000 / PAGE_SIZE - 1;
/// The outcomes a filter offers.
const OUTCOMES: [&str; 3] = ["success", "refused", "denied"];

/// `templates/audit.html`.
#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    /// The agents the viewer may read the trail of: the filter's choices.
    agents: Vec<String>,
    actions: Vec<&'static str>,
    outcomes: [&'static str; 3],
    /// The filter as asked, to show it again.
    asked: Asked,
    /// What was wrong with the filter, if anything.
    problem: Option<String>,
    events: Vec<EventRow>,
    page: usize,
    newer: Option<String>,
    older: Option<String>,
}

/// The filter as the form sends it; empty fields are no filter.
#[derive(Deserialize, Default, Clone)]
struct Asked {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<String>,
}

impl Asked {
    /// The page's address with this filter and page `page`.
    fn link(&self, page: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("agent", &self.agent),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                query.append_pair(name, value.trim());
            }
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{query}")
        }
    }
}

/// One event as the page shows it.
struct EventRow {
    at: String,
    agent: String,
    action: &'static str,
    outcome: &'static str,
    /// Why: the refusal's reason, the request, the change, in a few words.
    reason: Option<&'static str>,
    request: Option<String>,
    detail: Option<String>,
    actor: Option<String>,
    chain: Vec<String>,
    task: Option<String>,
    occurrences: u64,
}

/// `at` as `2026-12-07 16:38:05 UTC`: a trail has many events a minute.
fn to_the_second(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_else(|_| at.to_string())
}

/// `since`/`until` as the form takes them: a duration ago (`1h`, `30m`, `7d`), an RFC 3339
/// instant, or a UTC date and time (`2026-05-01 14:30`, `2026-05-01T14:30`, `2026-05-01`).
fn instant(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    use time::macros::format_description;
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(at);
    }
    let utc = |at: time::PrimitiveDateTime| at.assume_utc();
    let minutes = format_description!("[year]-[month]-[day] [hour]:[minute]");
    let minutes_t = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(at) = time::PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| time::PrimitiveDateTime::parse(text, minutes_t))
    {
        return Some(utc(at));
    }
    if let Ok(day) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Some(utc(day.midnight()));
    }
    let ago = crate::server::parse_duration(text).ok()?;
    time::Duration::try_from(ago)
        .ok()
        .and_then(|ago| now.checked_sub(ago))
}

/// `asked` as a store filter over `agents` (the viewer's readable ones), and the page; or
/// what is wrong with it.
fn filter(
    asked: &Asked,
    agents: &[Agent],
    now: OffsetDateTime,
) -> Result<(AuditFilter, usize), String> {
    let mut filter = AuditFilter::default();
    let agent = asked.agent.trim();
    if !agent.is_empty() {
        let agent = agents
            .iter()
            .find(|a| &*a.slug == agent)
            .ok_or("agent: not one whose trail you may read")?;
        filter.agents = vec![agent.id.clone()];
    }
    let action = asked.action.trim();
    if !action.is_empty() {
        filter.action = Some(AuditAction::parse(action).ok_or("action: not an action")?);
    }
    filter.outcome = match asked.outcome.trim() {
        "" => None,
        "success" => Some(Outcome::Success),
        "refused" => Some(Outcome::Refused(InvalidReason::Unknown)),
        "denied" => Some(Outcome::Denied),
        _ => return Err("outcome: success, refused or denied".to_owned()),
    };
    let when = "a duration ago (45m, 12h, 7d), or a UTC date and time (2026-05-01 14:30)";
    for (name, text, field) in [
        ("since", &asked.since, &mut filter.since),
        ("until", &asked.until, &mut filter.until),
    ] {
        if !text.trim().is_empty() {
            *field = Some(instant(text, now).ok_or_else(|| format!("{name}: {when}"))?);
        }
    }
    let page = match asked.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(page)) if (1..=MAX_PAGE).contains(&page) => page,
        Some(_) => {
            return Err(format!(
                "page: 1 to {MAX_PAGE}; for older events, set until"
            ));
        }
    };
    Ok((filter.last(page * PAGE_SIZE + 1), page))
}

async fn row<B: Backend>(
    names: &mut AgentNames<'_, B>,
    event: &AuditEvent,
) -> Result<EventRow, StoreError> {
    let agent = match &event.agent {
        Some(agent) => names.slug(agent).await?,
        None => "—".to_owned(),
    };
    Ok(EventRow {
        at: to_the_second(event.at),
        agent,
        action: event.action.as_str(),
        outcome: event.outcome.as_str(),
        reason: event.outcome.reason().map(|r| r.as_str()),
        request: event
            .request
            .as_ref()
            .map(|r| format!("{} {} → {}", r.method, r.path, r.status)),
        detail: event.detail.clone(),
        actor: event.actor.as_ref().map(|a| a.as_str().to_owned()),
        chain: names.slugs(&event.delegation_chain).await?,
        task: event.task_id.clone(),
        occurrences: event.occurrences,
    })
}

async fn page<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Query(asked): Query<Asked>,
) -> Response {
    let chrome = viewer.chrome("Audit trail", "audit");
    let managed = managed(&state, viewer.user().clone());
    let mut readable = Vec::new();
    let visible = match visible_agents(&state.store, viewer.user()).await {
        Ok(visible) => visible,
        Err(error) => {
            tracing::warn!(%error, "audit page: store unavailable");
            return message::unavailable();
        }
    };
    for agent in visible {
        match managed.allows(&agent, Operation::ReadAudit).await {
            Ok(true) => readable.push(agent),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "audit page: store unavailable");
                return message::unavailable();
            }
        }
    }
    let mut names = AgentNames::new(&state.store);
    for agent in &readable {
        names.insert(agent.id.clone(), agent.slug.to_string());
    }
    let mut page = AuditPage {
        chrome,
        agents: readable.iter().map(|a| a.slug.to_string()).collect(),
        actions: AuditAction::all().iter().map(AuditAction::as_str).collect(),
        outcomes: OUTCOMES,
        asked: asked.clone(),
        problem: None,
        events: Vec::new(),
        page: 1,
        newer: None,
        older: None,
    };
    let now = state.store.clock().now();
    let (mut filter, number) = match filter(&asked, &readable, now) {
        Ok(filter) => filter,
        Err(problem) => {
            page.problem = Some(problem);
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    if filter.agents.is_empty() {
        // Every agent whose trail the viewer may read (none: nothing to ask for).
        if readable.is_empty() {
            return render(StatusCode::OK, &page);
        }
        filter.agents = readable.iter().map(|a| a.id.clone()).collect();
    }
    let events = match managed.audit_trail(filter).await {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, "audit page: trail unavailable");
            return message::unavailable();
        }
    };
    // Oldest first from the store: the page is newest first.
    let skip = (number - 1) * PAGE_SIZE;
    let older = events.len() > skip + PAGE_SIZE;
    for event in events.iter().rev().skip(skip).take(PAGE_SIZE) {
        match row(&mut names, event).await {
            Ok(row) => page.events.push(row),
            Err(error) => {
                tracing::warn!(%error, "audit page: store unavailable");
                return message::unavailable();
            }
        }
    }
    page.page = number;
    page.newer = (number > 1).then(|| asked.link(number - 1));
    page.older = (older && number < MAX_PAGE).then(|| asked.link(number + 1));
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_as_a_person_types_them() {
        let now = time::macros::datetime!(2026-05-01 12:00 UTC);
        assert_eq!(
            instant("2026-04-30 14:30", now),
            Some(time::macros::datetime!(2026-04-30 14:30 UTC))
        );
        assert_eq!(
            instant("2026-04-30T14:30", now),
            Some(time::macros::datetime!(2026-04-30 14:30 UTC))
        );
        assert_eq!(
            instant("2026-04-30", now),
            Some(time::macros::datetime!(2026-04-30 0:00 UTC))
        );
        assert_eq!(
            instant("2026-04-30T14:30:00+02:00", now),
            Some(time::macros::datetime!(2026-04-30 12:30 UTC))
        );
        assert_eq!(
            instant("2h", now),
            Some(time::macros::datetime!(2026-05-01 10:00 UTC))
        );
        assert_eq!(instant("yesterday", now), None);
    }

    #[test]
    fn links_keep_the_filter_and_drop_empty_fields() {
        let asked = Asked {
            agent: "payer".into(),
            outcome: "denied".into(),
            since: " 1h ".into(),
            ..Asked::default()
        };
        assert_eq!(asked.link(1), "/audit?agent=payer&outcome=denied&since=1h");
        assert_eq!(
            asked.link(3),
            "/audit?agent=payer&outcome=denied&since=1h&page=3"
        );
        assert_eq!(Asked::default().link(1), "/audit");
    }
}
