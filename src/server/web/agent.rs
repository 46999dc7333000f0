//! `GET /agents/{slug}`: one agent: its record and policy, its tokens (with the forms to
//! create, rotate and revoke them), its children, who else has a role on it, and its activity
//! over the last 24 hours. Each part and each form only for a viewer whose role allows it
//! ([`Allowed`]).

use ::axum::Router;
use ::axum::extract::{Path, RawQuery, State};
use ::axum::response::Response;
use ::axum::routing::get;
use askama::Template;
use http::StatusCode;

use super::chart::{self, Activity};
use super::target::{Allowed, Target, refused};
use super::time::{ago_or, instant};
use super::{Chrome, Viewer, render};
use crate::audit::AuditFilter;
use crate::server::ManageState;
use crate::server::manage::visible_agents;
use crate::store::{AccessGrant, Agent, Backend, Store, TokenInfo, TokenStatus};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/agents/{slug}", get(agent_page::<B>))
}

/// The one-line notices a form's redirect may ask for (`?done=`): a fixed list, so that no
/// text from the URL is ever shown.
const NOTICES: &[(&str, &str)] = &[
    ("created", "Agent created."),
    ("revoked", "Token revoked: it no longer works."),
    (
        "policy",
        "Policy saved: it applies from the agent's next request.",
    ),
    (
        "disabled",
        "Agent disabled: its tokens are refused until it is enabled.",
    ),
    ("enabled", "Agent enabled."),
    ("granted", "Role granted."),
    ("withdrawn", "Role withdrawn."),
    ("deleted", "Agent deleted, with its tokens and children."),
];

/// The notice `?done=…` in `query` names, if it names one of [`NOTICES`].
pub(super) fn notice(query: Option<&str>) -> Option<&'static str> {
    let query = query?;
    let done = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "done")
        .map(|(_, value)| value)?;
    NOTICES
        .iter()
        .find(|(key, _)| *key == done)
        .map(|(_, text)| *text)
}

/// `templates/agent.html`.
#[derive(Template)]
#[template(path = "agent.html")]
struct AgentPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    agent: AgentView,
    may: Allowed,
    tokens: Vec<TokenRow>,
    /// The newest token's id, put in the create and rotate forms (see `tokens.rs`).
    newest: String,
    children: Vec<ChildRow>,
    grants: Vec<GrantRow>,
    activity: Option<Activity>,
}

/// The agent's record as the page shows it.
pub(super) struct AgentView {
    pub slug: String,
    pub owner: String,
    pub kind: String,
    pub status: String,
    pub active: bool,
    pub parent: Option<String>,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    /// `None`: every capability its owner has.
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

impl AgentView {
    pub(super) fn new(agent: &Agent, parent: Option<String>) -> Self {
        Self {
            slug: agent.slug.to_string(),
            owner: agent.owner.as_str().to_owned(),
            kind: agent.agent_type.as_str().to_owned(),
            status: agent.status.as_str().to_owned(),
            active: agent.status == crate::store::AgentStatus::Active,
            parent,
            created: instant(agent.created_at),
            expires: ago_or(agent.expires_at, "never"),
            last_used: ago_or(agent.last_used_at, "never"),
            allow: agent.policy.allowed().map(|set| set.to_strings()),
            deny: agent.policy.denied().to_strings(),
        }
    }
}

/// One token.
struct TokenRow {
    id: String,
    prefix: String,
    label: String,
    /// `active`, `revoked`, `expired`, `exhausted` or `completed`.
    status: &'static str,
    live: bool,
    capabilities: Option<String>,
    created: String,
    last_used: String,
    expires: String,
    uses_left: String,
}

impl TokenRow {
    fn new(info: &TokenInfo, now: time::OffsetDateTime) -> Self {
        let status = match info.status_at(now) {
            TokenStatus::Live => "active",
            other => other.as_str(),
        };
        let uses_left = match (info.operations_remaining, info.max_operations) {
            (Some(left), Some(max)) => format!("{left} of {max}"),
            (Some(left), None) => left.to_string(),
            (None, _) => "no limit".to_owned(),
        };
        Self {
            id: info.id.as_str().to_owned(),
            prefix: info.display_prefix.clone(),
            label: info.label.clone(),
            status,
            // Revoking or rotating a token that no longer works would change nothing.
            live: info.is_live_at(now),
            capabilities: info
                .capabilities
                .as_ref()
                .map(|c| c.to_strings().join(", ")),
            created: instant(info.created_at),
            last_used: ago_or(info.last_used_at, "never"),
            expires: ago_or(info.expires_at, "never"),
            uses_left,
        }
    }
}

/// One child agent.
struct ChildRow {
    slug: String,
    status: String,
}

/// One grant.
struct GrantRow {
    user: String,
    role: &'static str,
    granted: String,
}

impl GrantRow {
    fn new(grant: &AccessGrant) -> Self {
        Self {
            user: grant.user_id.as_str().to_owned(),
            role: grant.role.as_str(),
            granted: instant(grant.granted_at),
        }
    }
}

async fn agent_page<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let Target {
        managed,
        agent,
        allowed,
    } = target;
    let chrome = viewer.chrome(agent.slug.to_string(), "agents");
    let failed = |error: crate::error::StoreError| refused(chrome.clone(), &error.into());
    let now = state.store.clock().now();

    let mut tokens = Vec::new();
    if allowed.tokens {
        tokens = match managed.list_tokens(&agent.id).await {
            Ok(tokens) => tokens,
            Err(error) => return failed(error),
        };
        // Newest first: the one just made is on top.
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    }
    let newest = super::tokens::newest(&tokens);

    let visible = match visible_agents(&state.store, viewer.user()).await {
        Ok(visible) => visible,
        Err(error) => return failed(error),
    };
    let parent = agent.parent.as_ref().map(|parent| {
        visible
            .iter()
            .find(|a| a.id == *parent)
            .map_or_else(|| parent.as_str().to_owned(), |a| a.slug.to_string())
    });
    let children = visible
        .iter()
        .filter(|a| a.parent.as_ref() == Some(&agent.id))
        .map(|a| ChildRow {
            slug: a.slug.to_string(),
            status: a.status.as_str().to_owned(),
        })
        .collect();

    let mut grants = Vec::new();
    if allowed.grants {
        grants = match managed.grants(&agent.id).await {
            Ok(grants) => grants.iter().map(GrantRow::new).collect(),
            Err(error) => return failed(error),
        };
    }

    let mut activity = None;
    if allowed.audit {
        let filter = AuditFilter {
            with_children: true,
            since: Some(chart::since(now)),
            last: Some(chart::MAX_EVENTS),
            ..AuditFilter::default()
        };
        let events = match managed.audit_events(&agent.id, filter).await {
            Ok(events) => events,
            Err(error) => return failed(error),
        };
        let incomplete = events.len() >= chart::MAX_EVENTS;
        activity = Some(Activity::new(&events, now, incomplete));
    }

    let page = AgentPage {
        chrome,
        notice: notice(query.as_deref()),
        agent: AgentView::new(&agent, parent),
        may: allowed,
        tokens: tokens.iter().map(|t| TokenRow::new(t, now)).collect(),
        newest,
        children,
        grants,
        activity,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::notice;

    #[test]
    fn only_a_known_notice_is_shown() {
        assert_eq!(notice(Some("done=revoked")), Some(NOTICES_REVOKED));
        assert_eq!(
            notice(Some("x=1&done=policy")).map(|n| &n[..6]),
            Some("Policy")
        );
        assert_eq!(notice(Some("done=%3Cscript%3E")), None);
        assert_eq!(notice(Some("done=")), None);
        assert_eq!(notice(None), None);
    }

    const NOTICES_REVOKED: &str = "Token revoked: it no longer works.";
}
