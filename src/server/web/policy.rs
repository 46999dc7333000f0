//! `GET`, `POST /agents/{slug}/policy`: the agent's policy, edited: the capabilities it is
//! allowed (or every one its owner has) and those it is denied. Owner and admin only, as
//! `PUT /api/agents/{slug}/policy`.

use ::axum::Router;
use ::axum::extract::{Form, Path, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::get;
use askama::Template;
use http::StatusCode;
use serde::Deserialize;

use super::target::{Target, not_allowed, refused};
use super::{Chrome, Viewer, message, render};
use crate::ceiling::{CapabilitySet, Policy};
use crate::server::ManageState;
use crate::store::{Backend, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new().route("/agents/{slug}/policy", get(edit::<B>).post(save::<B>))
}

/// `templates/policy.html`.
#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    chrome: Chrome,
    slug: String,
    /// Whether it is allowed every capability its owner has.
    everything: bool,
    /// One pattern a line.
    allow: String,
    deny: String,
}

async fn edit<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let slug = target.agent.slug.to_string();
    let chrome = viewer.chrome(format!("Policy of {slug}"), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    let policy = &target.agent.policy;
    let page = PolicyPage {
        chrome,
        slug,
        everything: policy.allowed().is_none(),
        allow: policy
            .allowed()
            .map(|set| set.to_strings().join("\n"))
            .unwrap_or_default(),
        deny: policy.denied().to_strings().join("\n"),
    };
    render(StatusCode::OK, &page)
}

/// The form: `scope` is `everything` or `listed` (the `allow` patterns).
#[derive(Deserialize)]
struct PolicyForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    allow: String,
    #[serde(default)]
    deny: String,
}

/// The patterns of a text area: separated by commas, spaces or lines.
fn patterns(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The policy `form` describes, or what is wrong with it.
fn policy(form: &PolicyForm) -> Result<Policy, String> {
    let mut policy = match form.scope.as_str() {
        "everything" => Policy::unrestricted(),
        "listed" => Policy::allow(
            CapabilitySet::parse(patterns(&form.allow)).map_err(|e| format!("Allowed: {e}"))?,
        ),
        _ => return Err("Choose what the agent is allowed.".to_owned()),
    };
    let deny = patterns(&form.deny);
    if !deny.is_empty() {
        policy = policy.with_deny(CapabilitySet::parse(deny).map_err(|e| format!("Denied: {e}"))?);
    }
    Ok(policy)
}

async fn save<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<PolicyForm>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome(format!("Policy of {}", target.agent.slug), "agents");
    if !target.allowed.manage {
        return not_allowed(chrome);
    }
    let policy = match policy(&form) {
        Ok(policy) => policy,
        Err(text) => {
            return message::for_viewer(chrome, StatusCode::UNPROCESSABLE_ENTITY, &text);
        }
    };
    match target
        .managed
        .set_agent_policy(&target.agent.id, policy)
        .await
    {
        Ok(agent) => Redirect::to(&format!("/agents/{}?done=policy", agent.slug)).into_response(),
        Err(error) => refused(chrome, &error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(scope: &str, allow: &str, deny: &str) -> PolicyForm {
        PolicyForm {
            scope: scope.into(),
            allow: allow.into(),
            deny: deny.into(),
        }
    }

    #[test]
    fn the_form_becomes_a_policy_or_says_what_is_wrong() {
        let listed = policy(&form("listed", "posts:*\r\ncomments:read", "posts:delete")).unwrap();
        assert_eq!(
            listed.allowed().unwrap().to_strings(),
            ["posts:*", "comments:read"]
        );
        assert_eq!(listed.denied().to_strings(), ["posts:delete"]);
        let everything = policy(&form("everything", "ignored:*", "")).unwrap();
        assert!(everything.allowed().is_none());
        assert!(everything.denied().to_strings().is_empty());
        let nothing = policy(&form("listed", "", "")).unwrap();
        assert!(nothing.allowed().unwrap().to_strings().is_empty());
        assert!(policy(&form("", "", "")).unwrap_err().starts_with("Choose"));
        assert!(
            policy(&form("listed", "Not A Cap", ""))
                .unwrap_err()
                .starts_with("Allowed")
        );
        assert!(
            policy(&form("everything", "", "<b>"))
                .unwrap_err()
                .starts_with("Denied")
        );
    }
}
