//! The agent a page is about, and what the person looking may do with it: the pages show only
//! that, and each action is still checked by [`Managed`] when it is asked for.

use ::axum::response::Response;
use http::StatusCode;

use super::{Chrome, Viewer, message};
use crate::server::ManageState;
use crate::server::error::ApiError;
use crate::server::manage::{by_slug, managed};
use crate::store::{Agent, Backend, Managed, Operation, Store, authorize};

/// What the viewer may do with one agent, by the REST API's rule ([`authorize`]): the owner
/// everything, an `admin` grant everything, an `operator` also its tokens, grants and trail
/// (to read), a `viewer` the agent alone.
#[derive(Debug, Clone, Copy)]
pub(super) struct Allowed {
    /// List its tokens.
    pub tokens: bool,
    /// Issue, rotate and revoke tokens.
    pub change_tokens: bool,
    /// List who else has a role on it.
    pub grants: bool,
    /// Grant and withdraw roles.
    pub change_grants: bool,
    /// Change its policy, disable, enable or delete it.
    pub manage: bool,
    /// Read its audit trail (the activity chart).
    pub audit: bool,
}

impl Allowed {
    fn new(viewer: &Viewer, agent: &Agent, role: Option<crate::store::AccessRole>) -> Self {
        let may = |operation| authorize(viewer.user(), agent, role, operation).is_ok();
        Self {
            tokens: may(Operation::ListTokens),
            change_tokens: may(Operation::IssueToken)
                && may(Operation::RotateToken)
                && may(Operation::RevokeToken),
            grants: may(Operation::ListGrants),
            change_grants: may(Operation::ManageGrants),
            manage: may(Operation::ManageAgent),
            audit: may(Operation::ReadAudit),
        }
    }
}

/// The agent named `slug`, as the viewer may see it.
pub(super) struct Target<'a, B: Backend> {
    /// The store as the viewer sees it: every change goes through it.
    pub managed: Managed<'a, Store<B>>,
    /// The agent.
    pub agent: Agent,
    /// What the viewer may do with it.
    pub allowed: Allowed,
}

impl<'a, B: Backend> Target<'a, B> {
    /// The agent `slug` names, if the viewer may see it; else the page that says why (404 for
    /// no such agent, 403 for one they have no role on, as the REST API answers).
    pub(super) async fn load(
        state: &'a ManageState<Store<B>>,
        viewer: &Viewer,
        slug: &str,
    ) -> Result<Self, Response> {
        let chrome = || viewer.chrome("Agent", "agents");
        let agent = by_slug(&state.store, slug)
            .await
            .map_err(|e| refused(chrome(), &e))?;
        let managed = managed(state, viewer.user().clone());
        let agent = managed
            .agent(&agent.id)
            .await
            .map_err(|e| refused(chrome(), &e.into()))?;
        let role = managed
            .role(&agent)
            .await
            .map_err(|e| refused(chrome(), &e.into()))?;
        let allowed = Allowed::new(viewer, &agent, role);
        Ok(Self {
            managed,
            agent,
            allowed,
        })
    }
}

/// The page of a refused or failed operation: the REST API's status and message (a store
/// failure's detail only in the log).
pub(super) fn refused(chrome: Chrome, error: &ApiError) -> Response {
    if error.status().is_server_error() {
        tracing::warn!(status = %error.status(), message = error.message(), "a page failed");
    }
    message::for_viewer(chrome, error.status(), error.message())
}

/// `403`: what the viewer asked for is not theirs to do (checked before the store is asked,
/// for actions whose call would not say so first).
pub(super) fn not_allowed(chrome: Chrome) -> Response {
    message::for_viewer(
        chrome,
        StatusCode::FORBIDDEN,
        "Your role on this agent does not allow this.",
    )
}
