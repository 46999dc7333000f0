//! `/approvals`: what supervised agents wait for, approved or denied here by who may decide
//! (the agent's owner or an admin, as the REST API's `approvals_router` decides); the pending
//! list alone at `/approvals/pending`, which the script fetches every few seconds so that a
//! new approval appears on an open page; and the history, newest first, paged.

use std::collections::HashMap;

use ::axum::Router;
use ::axum::extract::{Path, Query, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::{get, post};
use askama::Template;
use http::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;

use super::agent_names::AgentNames;
use super::{Chrome, Viewer, message, render};
use crate::approval::{
    Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus, MAX_LISTED,
};
use crate::error::StoreError;
use crate::principal::AgentId;
use crate::server::ManageState;
use crate::server::manage::managed;
use crate::store::{Backend, Operation, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route("/approvals", get(page::<B>))
        .route("/approvals/pending", get(pending_fragment::<B>))
        .route("/approvals/{id}/approve", post(approve::<B>))
        .route("/approvals/{id}/deny", post(deny::<B>))
}

/// Approvals the history shows a page.
const HISTORY_PAGE: usize = 20;
/// The deepest history page: the history reads at most [`MAX_LISTED`] approvals of a status.
const HISTORY_PAGES: usize = (MAX_LISTED - 1) / HISTORY_PAGE;
/// The statuses of a decided or expired approval.
const DECIDED: [ApprovalStatus; 4] = [
    ApprovalStatus::Approved,
    ApprovalStatus::Denied,
    ApprovalStatus::Used,
    ApprovalStatus::Expired,
];

/// `templates/approvals.html`.
#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    chrome: Chrome,
    /// The one-line notice after a decision, from a fixed list.
    done: Option<&'static str>,
    pending: Vec<PendingRow>,
    history: Vec<HistoryRow>,
    /// The history page shown, from 1.
    history_page: usize,
    newer: Option<usize>,
    older: Option<usize>,
}

/// `templates/approvals_pending.html`: the pending list alone, as the script fetches it.
#[derive(Template)]
#[template(path = "approvals_pending.html")]
struct PendingFragment {
    chrome: Chrome,
    pending: Vec<PendingRow>,
}

/// A pending approval as the page shows it.
struct PendingRow {
    id: String,
    agent: String,
    /// Who the agent acts for.
    owner: String,
    method: String,
    path: String,
    capability: String,
    /// The details, pretty-printed JSON.
    details: Option<String>,
    message: String,
    /// The agents it acts under, by slug, the first nearest the human.
    chain: Vec<String>,
    task: Option<String>,
    orchestrator: Option<String>,
    asked: String,
    expires: String,
    expires_in: String,
    /// Whether the viewer may approve or deny it.
    may_decide: bool,
}

/// A decided or expired approval as the history shows it.
struct HistoryRow {
    agent: String,
    message: String,
    capability: String,
    status: &'static str,
    decided_by: String,
    decided_at: String,
    asked: String,
}

#[derive(Deserialize)]
struct PageQuery {
    done: Option<String>,
    page: Option<String>,
}

/// The notice after a decision: never text from the URL.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some("Approved: the agent's next try of exactly this action goes through."),
        "denied" => Some("Denied: the agent's tries of this action are refused until it expires."),
        _ => None,
    }
}

/// How long until `at`, in a few words.
fn time_left(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    match seconds {
        ..=0 => "expired".to_owned(),
        1..60 => "in under a minute".to_owned(),
        60..3600 => format!("in {} min", seconds / 60),
        _ => format!("in {} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn pretty(details: &Option<serde_json::Value>) -> Option<String> {
    details
        .as_ref()
        .map(|d| serde_json::to_string_pretty(d).unwrap_or_else(|_| d.to_string()))
}

/// The approvals pending for `viewer`'s agents, newest first, each with whether they may
/// decide it.
async fn pending_rows<B: Backend>(
    state: &ManageState<Store<B>>,
    viewer: &Viewer,
) -> Result<Vec<PendingRow>, StoreError> {
    let managed = managed(state, viewer.user().clone());
    let pending = managed
        .approvals(&ApprovalFilter::all().status(ApprovalStatus::Pending))
        .await?;
    let now = state.store.clock().now();
    let mut names = AgentNames::new(&state.store);
    let mut deciders: HashMap<AgentId, bool> = HashMap::new();
    let mut rows = Vec::with_capacity(pending.len());
    for approval in pending {
        let may_decide = match deciders.get(&approval.agent_id) {
            Some(may) => *may,
            None => {
                let may = match state.store.agent(&approval.agent_id).await? {
                    Some(agent) => managed.allows(&agent, Operation::DecideApproval).await?,
                    None => false,
                };
                deciders.insert(approval.agent_id.clone(), may);
                may
            }
        };
        let orchestrator = match &approval.orchestrator {
            Some(agent) => Some(names.slug(agent).await?),
            None => None,
        };
        rows.push(PendingRow {
            id: approval.id.to_string(),
            agent: names.slug(&approval.agent_id).await?,
            owner: approval.owner.as_str().to_owned(),
            method: approval.method.clone(),
            path: approval.path.clone(),
            capability: approval.capability.clone(),
            details: pretty(&approval.details),
            message: approval.binding_message.clone(),
            chain: names.slugs(&approval.delegation_chain).await?,
            task: approval.task_id.clone(),
            orchestrator,
            asked: super::time::instant(approval.created_at),
            expires: super::time::instant(approval.expires_at),
            expires_in: time_left(approval.expires_at, now),
            may_decide,
        });
    }
    Ok(rows)
}

/// The history page `page` (from 1): decided or expired approvals, newest first, and whether
/// there are older ones.
async fn history_rows<B: Backend>(
    state: &ManageState<Store<B>>,
    viewer: &Viewer,
    page: usize,
) -> Result<(Vec<HistoryRow>, bool), StoreError> {
    let managed = managed(state, viewer.user().clone());
    let skip = (page - 1) * HISTORY_PAGE;
    // The newest `skip + page + 1` of each status hold the page and tell whether more follow.
    let wanted = skip + HISTORY_PAGE + 1;
    let mut decided: Vec<Approval> = Vec::new();
    for status in DECIDED {
        let filter = ApprovalFilter::all().status(status).last(wanted);
        decided.extend(managed.approvals(&filter).await?);
    }
    decided.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let older = decided.len() > skip + HISTORY_PAGE;
    let now = state.store.clock().now();
    let mut names = AgentNames::new(&state.store);
    let mut rows = Vec::new();
    for approval in decided.into_iter().skip(skip).take(HISTORY_PAGE) {
        rows.push(HistoryRow {
            agent: names.slug(&approval.agent_id).await?,
            message: approval.binding_message.clone(),
            capability: approval.capability.clone(),
            status: approval.status_at(now).as_str(),
            decided_by: approval
                .decided_by
                .as_ref()
                .map_or_else(|| "nobody".to_owned(), |u| u.as_str().to_owned()),
            decided_at: super::time::ago_or(approval.decided_at, "—"),
            asked: super::time::instant(approval.created_at),
        });
    }
    Ok((rows, older))
}

async fn page<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> Response {
    let chrome = viewer.chrome("Approvals", "approvals");
    let history_page = match query.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(page)) if (1..=HISTORY_PAGES).contains(&page) => page,
        Some(_) => {
            let text = format!("The history has pages 1 to {HISTORY_PAGES}.");
            return message::for_viewer(chrome, StatusCode::BAD_REQUEST, &text);
        }
    };
    let pending = pending_rows(&state, &viewer).await;
    let history = history_rows(&state, &viewer, history_page).await;
    let (pending, (history, older)) = match (pending, history) {
        (Ok(pending), Ok(history)) => (pending, history),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "approvals page: store unavailable");
            return message::unavailable();
        }
    };
    let page = ApprovalsPage {
        chrome,
        done: notice(query.done.as_deref()),
        pending,
        history,
        history_page,
        newer: (history_page > 1).then(|| history_page - 1),
        older: (older && history_page < HISTORY_PAGES).then_some(history_page + 1),
    };
    render(StatusCode::OK, &page)
}

async fn pending_fragment<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
) -> Response {
    match pending_rows(&state, &viewer).await {
        Ok(pending) => render(
            StatusCode::OK,
            &PendingFragment {
                chrome: viewer.chrome("Approvals", "approvals"),
                pending,
            },
        ),
        Err(error) => {
            tracing::warn!(%error, "pending approvals: store unavailable");
            message::unavailable()
        }
    }
}

/// What is asked of an approval.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Deny,
}

async fn approve<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    decide(&state, viewer, &id, Decision::Approve).await
}

async fn deny<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    decide(&state, viewer, &id, Decision::Deny).await
}

/// Decides the approval `id` as `viewer`, as `POST /api/approvals/{id}/approve` (once, until it
/// would have expired) or `…/deny` does, and goes back to the page.
async fn decide<B: Backend>(
    state: &ManageState<Store<B>>,
    viewer: Viewer,
    id: &str,
    decision: Decision,
) -> Response {
    let chrome = viewer.chrome("Approvals", "approvals");
    let not_found = "No such approval, or not one of an agent you may see.";
    // An approval id has no other shape: no need to ask the store.
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return message::for_viewer(chrome, StatusCode::NOT_FOUND, not_found);
    }
    let id = ApprovalId::from(id);
    let managed = managed(state, viewer.user().clone());
    let decided = match decision {
        Decision::Approve => managed.approve(&id, ApprovalBounds::default()).await,
        Decision::Deny => managed.deny(&id).await,
    };
    match decided {
        Ok(_) => Redirect::to(match decision {
            Decision::Approve => "/approvals?done=approved",
            Decision::Deny => "/approvals?done=denied",
        })
        .into_response(),
        Err(StoreError::Forbidden { .. }) => message::for_viewer(
            chrome,
            StatusCode::FORBIDDEN,
            "Only the agent's owner or an admin may decide its approvals.",
        ),
        Err(StoreError::NotFound(_)) => {
            message::for_viewer(chrome, StatusCode::NOT_FOUND, not_found)
        }
        Err(StoreError::Conflict(_)) => message::for_viewer(
            chrome,
            StatusCode::CONFLICT,
            "This approval was decided already, or it has expired: nothing changed.",
        ),
        Err(error) => {
            tracing::warn!(%error, "deciding an approval failed");
            message::unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_minutes_and_hours() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let at = |s: i64| now + time::Duration::seconds(s);
        assert_eq!(time_left(at(-5), now), "expired");
        assert_eq!(time_left(at(0), now), "expired");
        assert_eq!(time_left(at(30), now), "in under a minute");
        assert_eq!(time_left(at(299), now), "in 4 min");
        assert_eq!(time_left(at(3600 + 120), now), "in 1 h 2 min");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert!(notice(Some("approved")).is_some());
        assert!(notice(Some("denied")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
