//! The agent page's token forms: create (`POST /agents/{slug}/tokens`), rotate
//! (`POST /agents/{slug}/tokens/rotate`) and revoke (`POST /agents/{slug}/tokens/revoke`).
//!
//! A new token is shown once, in the answer to the post that made it
//! (`templates/token_created.html`), not behind a redirect: a redirect to a page that shows it
//! would need the secret kept somewhere between the two requests (in the store, in memory on
//! one node, or in a URL or cookie), and it must be kept nowhere. The answer carries
//! `Cache-Control: no-store`, so the browser keeps no copy to show on *back*, and the script
//! blanks the token when the page is left, in case a browser keeps the page in its
//! back-forward cache anyway. Reloading that page asks the browser to post the form again;
//! the form carries the id of the agent's newest token when it was shown (`newest`), and a
//! post whose `newest` is no longer the newest (a token was made since: by this very form,
//! or by someone else) is refused with 409 and makes nothing: a reload never mints a second
//! token nor shows one again. The check needs no storage and holds across nodes.

use ::axum::Router;
use ::axum::extract::{Form, Path, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::post;
use askama::Template;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::target::{Target, not_allowed, refused};
use super::time::ago_or;
use super::{Chrome, Viewer, message, render};
use crate::ceiling::CapabilitySet;
use crate::principal::TokenId;
use crate::server::ManageState;
use crate::server::error::ApiError;
use crate::store::{Backend, IssuedToken, NewToken, Store, TokenInfo};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route("/agents/{slug}/tokens", post(create::<B>))
        .route("/agents/{slug}/tokens/rotate", post(rotate::<B>))
        .route("/agents/{slug}/tokens/revoke", post(revoke::<B>))
}

/// The id of the newest of `tokens` (empty when there is none): what the create and rotate
/// forms carry as `newest`.
pub(super) fn newest(tokens: &[TokenInfo]) -> String {
    tokens
        .iter()
        .max_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.as_str().cmp(b.id.as_str()))
        })
        .map(|t| t.id.as_str().to_owned())
        .unwrap_or_default()
}

/// `templates/token_created.html`: a token, shown this once.
#[derive(Template)]
#[template(path = "token_created.html")]
struct TokenCreated {
    chrome: Chrome,
    slug: String,
    /// The secret.
    token: String,
    label: String,
    expires: String,
    uses: String,
    /// For a rotation: until when the token it replaces still works.
    replaces_until: Option<String>,
}

impl TokenCreated {
    fn new(chrome: Chrome, slug: &str, issued: &IssuedToken) -> Self {
        Self {
            chrome,
            slug: slug.to_owned(),
            token: issued.token.expose_secret().to_owned(),
            label: issued.info.label.clone(),
            expires: ago_or(issued.info.expires_at, "never"),
            uses: issued
                .info
                .max_operations
                .map_or_else(|| "no limit".to_owned(), |n| n.to_string()),
            replaces_until: None,
        }
    }

    /// The page, never kept by the browser (see the module's documentation).
    fn answer(&self) -> Response {
        let mut response = render(StatusCode::CREATED, self);
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// `422` with `message`: a field that does not hold.
fn invalid(chrome: Chrome, message: &str) -> Response {
    super::message::for_viewer(chrome, StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// `409`: the form was posted before (a reload), or a token was made since it was shown.
fn stale(chrome: Chrome) -> Response {
    message::for_viewer(
        chrome,
        StatusCode::CONFLICT,
        "A token was created since this form was shown (perhaps by this very form, sent again \
         by a reload). Nothing was created, and no token is shown again. Open the agent's \
         page to see its tokens.",
    )
}

/// Whether `newest`, from the form, is still the agent's newest token.
async fn still_newest<B: Backend>(target: &Target<'_, B>, newest: &str) -> Result<bool, ApiError> {
    let tokens = target.managed.list_tokens(&target.agent.id).await?;
    Ok(self::newest(&tokens) == newest)
}

/// The create form.
#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    label: String,
    /// Seconds, or empty for the agent type's default.
    #[serde(default)]
    lifetime: String,
    /// Capability patterns, separated by commas or white space; empty for no narrowing.
    #[serde(default)]
    capabilities: String,
    /// Empty for no limit.
    #[serde(default)]
    max_uses: String,
    #[serde(default)]
    newest: String,
}

/// The longest label a person may type (the store's own bound is higher).
const MAX_LABEL: usize = 200;

/// The token `form` asks for, or what is wrong with it.
fn new_token(form: &CreateForm) -> Result<NewToken, String> {
    let label = form.label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL {
        return Err(format!("Label: 1 to {MAX_LABEL} characters."));
    }
    let mut new = NewToken::new(label);
    let lifetime = form.lifetime.trim();
    if !lifetime.is_empty() {
        let seconds = lifetime
            .parse::<u64>()
            .ok()
            .filter(|&s| s > 0)
            .ok_or("Lifetime: one of the choices offered.")?;
        new = new.expires_in(std::time::Duration::from_secs(seconds));
    }
    let names: Vec<&str> = form
        .capabilities
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|name| !name.is_empty())
        .collect();
    if !names.is_empty() {
        let set = CapabilitySet::parse(&names).map_err(|e| format!("Capabilities: {e}"))?;
        new = new.with_capabilities(set);
    }
    let max_uses = form.max_uses.trim();
    if !max_uses.is_empty() {
        let n = max_uses
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("Maximum uses: a whole number above zero, or empty for no limit.")?;
        new = new.max_operations(n);
    }
    Ok(new)
}

async fn create<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<CreateForm>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome("New token", "agents");
    // Checked before anything else is said: an operator learns nothing from a forged post.
    if !target.allowed.change_tokens {
        return not_allowed(chrome);
    }
    let new = match new_token(&form) {
        Ok(new) => new,
        Err(message) => return invalid(chrome, &message),
    };
    match still_newest(&target, &form.newest).await {
        Ok(true) => {}
        Ok(false) => return stale(chrome),
        Err(error) => return refused(chrome, &error),
    }
    match target.managed.create_token(&target.agent.id, new).await {
        Ok(issued) => TokenCreated::new(chrome, &target.agent.slug, &issued).answer(),
        Err(error) => refused(chrome, &error.into()),
    }
}

/// The rotate form: the token, how long the old one still works, and the form's `newest`.
#[derive(Deserialize)]
struct RotateForm {
    #[serde(default)]
    token: String,
    /// Seconds; empty or 0 for none.
    #[serde(default)]
    grace: String,
    #[serde(default)]
    newest: String,
}

async fn rotate<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome("Token rotated", "agents");
    if !target.allowed.change_tokens {
        return not_allowed(chrome);
    }
    let grace = form.grace.trim();
    let Ok(grace) = (if grace.is_empty() {
        Ok(0)
    } else {
        grace.parse::<u64>()
    }) else {
        return invalid(chrome, "Grace period: one of the choices offered.");
    };
    match still_newest(&target, &form.newest).await {
        Ok(true) => {}
        Ok(false) => return stale(chrome),
        Err(error) => return refused(chrome, &error),
    }
    let old = TokenId::from(form.token);
    let grace = std::time::Duration::from_secs(grace);
    match target
        .managed
        .rotate_token(&target.agent.id, &old, grace)
        .await
    {
        Ok(issued) => {
            let mut page = TokenCreated::new(chrome, &target.agent.slug, &issued);
            let now = state.store.clock().now();
            let until = now + time::Duration::seconds(i64::try_from(grace.as_secs()).unwrap_or(0));
            page.replaces_until = Some(super::time::instant(until));
            page.answer()
        }
        Err(error) => refused(chrome, &error.into()),
    }
}

/// The revoke form: the token.
#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    token: String,
}

async fn revoke<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome("Revoke a token", "agents");
    if !target.allowed.change_tokens {
        return not_allowed(chrome);
    }
    let token = TokenId::from(form.token);
    match target.managed.revoke_token(&target.agent.id, &token).await {
        Ok(_) => {
            Redirect::to(&format!("/agents/{}?done=revoked", target.agent.slug)).into_response()
        }
        Err(error) => refused(chrome, &error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(label: &str, lifetime: &str, capabilities: &str, max_uses: &str) -> CreateForm {
        CreateForm {
            label: label.into(),
            lifetime: lifetime.into(),
            capabilities: capabilities.into(),
            max_uses: max_uses.into(),
            newest: String::new(),
        }
    }

    #[test]
    fn the_form_becomes_a_token_request_or_says_what_is_wrong() {
        let new = new_token(&form(" ci ", "3600", "posts:read, posts:write", "5")).unwrap();
        assert_eq!(new.label, "ci");
        assert_eq!(new.expires_in, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(
            new.capabilities.unwrap().to_strings(),
            ["posts:read", "posts:write"]
        );
        assert_eq!(new.max_operations, Some(5));
        let plain = new_token(&form("ci", "", " ", "")).unwrap();
        assert_eq!(plain.expires_in, None);
        assert!(plain.capabilities.is_none());
        assert_eq!(plain.max_operations, None);
        for (bad, says) in [
            (form("", "", "", ""), "Label"),
            (form("ci", "-1", "", ""), "Lifetime"),
            (form("ci", "0", "", ""), "Lifetime"),
            (form("ci", "", "Not A Cap", ""), "Capabilities"),
            (form("ci", "", "", "0"), "Maximum uses"),
            (form("ci", "", "", "many"), "Maximum uses"),
        ] {
            let error = new_token(&bad).err().unwrap();
            assert!(error.starts_with(says), "{error}");
        }
    }
}
