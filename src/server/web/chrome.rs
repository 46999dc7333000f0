//! What every page shows around its content (the layout's data), and who is looking.

use ::axum::extract::FromRequestParts;
use ::axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;

use super::form_token::FormToken;
use crate::principal::{AuthSource, Principal, UserId};

/// The capability a user's role must allow for the users page (adding users, changing roles,
/// deactivating): the unrestricted role `*` allows it.
pub const MANAGE_USERS: &str = "agent-auth:users";

/// The layout's data: the page title, the section highlighted in the navigation, who is
/// signed in (`None` on the sign-in page) and the token of the page's forms.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    /// The page's title.
    pub title: String,
    /// `agents`, `approvals`, `apps`, `audit`, `users`, or empty.
    pub section: &'static str,
    /// The signed-in user, if any.
    pub user: Option<String>,
    /// Whether to show the users page.
    pub site_admin: bool,
    /// The hidden `csrf` field of every form.
    pub form_token: String,
}

impl Chrome {
    /// The chrome of a page nobody is signed in to (sign-in, errors before sign-in).
    pub(crate) fn anonymous(title: impl Into<String>, token: Option<&FormToken>) -> Self {
        Self {
            title: title.into(),
            section: "",
            user: None,
            site_admin: false,
            form_token: token.map(|t| t.as_str().to_owned()).unwrap_or_default(),
        }
    }
}

/// A signed-in person looking at a page: their session principal and the token of the page's
/// forms. As an extractor it sends anyone else to the sign-in form (`303`, with `return=` the
/// page asked for); a request authenticated by an agent token is not a person's.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The session principal (the user's role as ceiling).
    pub principal: Principal,
    /// The forms' token.
    pub token: FormToken,
}

impl Viewer {
    /// Who is signed in.
    pub(crate) fn user(&self) -> &UserId {
        self.principal.user_id()
    }

    /// Whether the user may manage users.
    pub(crate) fn site_admin(&self) -> bool {
        self.principal.can(MANAGE_USERS)
    }

    /// The chrome of one of their pages.
    pub(crate) fn chrome(&self, title: impl Into<String>, section: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            section,
            user: Some(self.user().as_str().to_owned()),
            site_admin: self.site_admin(),
            form_token: self.token.as_str().to_owned(),
        }
    }
}

/// `303` to the sign-in form, coming back to `parts`' path and query afterwards.
fn to_sign_in(parts: &Parts) -> Response {
    let back = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return", &back)
        .finish();
    Redirect::to(&format!("/login?{query}")).into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = FormToken::from_request_parts(parts, state).await?;
        let principal = parts
            .extensions
            .get::<Principal>()
            .filter(|p| p.auth_source() == AuthSource::Session)
            .cloned();
        match principal {
            Some(principal) => Ok(Self { principal, token }),
            None => Err(to_sign_in(parts)),
        }
    }
}
