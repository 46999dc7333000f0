//! `/apps`: the applications (OAuth clients) the signed-in person connected, each with what it
//! was granted, when it was connected and last used, and a way to disconnect it (confirmed on
//! a page of its own). Disconnecting is [`Store::disconnect`]: every token of the
//! connection's agent is revoked and the agent disabled, so its access tokens and its refresh
//! tokens fail from then on.
//!
//! Without the feature `oauth`, or over a store that keeps no OAuth records, no application
//! can connect: the page says so (the layout's link to it stays, and leads somewhere).

use ::axum::Router;
use ::axum::extract::{Query, State};
use ::axum::response::Response;
use ::axum::routing::get;
use askama::Template;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Viewer, render};
use crate::server::ManageState;
use crate::store::{Backend, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    let routes = Router::new().route("/apps", get(list::<B>));
    #[cfg(feature = "oauth")]
    let routes = routes.route(
        "/apps/disconnect",
        get(connected::confirm::<B>).post(connected::disconnect::<B>),
    );
    routes
}

/// `templates/apps.html`.
#[derive(Template)]
#[template(path = "apps.html")]
struct Apps {
    chrome: Chrome,
    /// `None`: this server connects no applications.
    apps: Option<Vec<AppRow>>,
    notice: &'static str,
}

/// One connected application as the page lists it.
struct AppRow {
    client_id: String,
    name: String,
    /// What it may do for the person: the capabilities granted.
    scopes: Vec<String>,
    connected: String,
    last_used: String,
    /// Whether its agent still acts (not disabled, the client not revoked).
    active: bool,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// The notices a redirect back to the list may ask for (never text from the URL).
fn notice(done: Option<&str>) -> &'static str {
    match done {
        Some("disconnected") => {
            "The application was disconnected: its access and refresh tokens no longer work."
        }
        _ => "",
    }
}

async fn list<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Response {
    let chrome = viewer.chrome("Connected apps", "apps");
    #[cfg(feature = "oauth")]
    let apps = match connected::rows(&state.store, viewer.user()).await {
        Ok(apps) => apps,
        Err(error) => {
            tracing::warn!(%error, "connected apps page: store unavailable");
            return super::message::unavailable();
        }
    };
    #[cfg(not(feature = "oauth"))]
    let apps = {
        let _ = &state;
        None
    };
    let page = Apps {
        chrome,
        apps,
        notice: notice(done.done.as_deref()),
    };
    render(StatusCode::OK, &page)
}

/// The connections, from the store's OAuth records (feature `oauth`).
#[cfg(feature = "oauth")]
mod connected {
    use ::axum::Form;
    use ::axum::extract::{Query, State};
    use ::axum::response::{IntoResponse, Redirect, Response};
    use askama::Template;
    use http::StatusCode;
    use serde::Deserialize;

    use super::super::{Chrome, Viewer, message, render};
    use super::AppRow;
    use crate::audit::{AuditAction, AuditEvent, Outcome};
    use crate::error::StoreError;
    use crate::principal::UserId;
    use crate::server::ManageState;
    use crate::server::web::time;
    use crate::store::{AgentStatus, Backend, Store};

    /// `templates/app_disconnect.html`.
    #[derive(Template)]
    #[template(path = "app_disconnect.html")]
    struct ConfirmDisconnect {
        chrome: Chrome,
        client_id: String,
        name: String,
    }

    /// The person's connections, newest first; `None` if the store keeps no OAuth records.
    pub(super) async fn rows<B: Backend>(
        store: &Store<B>,
        user: &UserId,
    ) -> Result<Option<Vec<AppRow>>, StoreError> {
        let connections = match store.connections(Some(user)).await {
            Ok(connections) => connections,
            Err(StoreError::Unsupported(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut rows = Vec::with_capacity(connections.len());
        for connection in connections {
            let client = store.client(&connection.client_id).await?;
            let agent = store.agent(&connection.agent).await?;
            let scopes = agent
                .as_ref()
                .and_then(|agent| agent.policy.allowed().map(|set| set.to_strings()))
                .unwrap_or_default();
            let active = agent
                .as_ref()
                .is_some_and(|agent| agent.status == AgentStatus::Active)
                && client.as_ref().is_some_and(|c| c.revoked_at.is_none());
            rows.push((
                connection.created_at,
                AppRow {
                    name: client
                        .as_ref()
                        .map_or_else(|| connection.client_id.clone(), |c| c.name.clone()),
                    client_id: connection.client_id,
                    scopes,
                    connected: time::instant(connection.created_at),
                    last_used: time::ago_or(agent.and_then(|a| a.last_used_at), "never"),
                    active,
                },
            ));
        }
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        Ok(Some(rows.into_iter().map(|(_, row)| row).collect()))
    }

    #[derive(Deserialize)]
    pub(super) struct Which {
        #[serde(default)]
        client: String,
    }

    fn not_connected(chrome: Chrome) -> Response {
        message::for_viewer(
            chrome,
            StatusCode::NOT_FOUND,
            "You have no connection to that application.",
        )
    }

    /// `GET /apps/disconnect?client=…`: the page that asks first.
    pub(super) async fn confirm<B: Backend>(
        State(state): State<ManageState<Store<B>>>,
        viewer: Viewer,
        Query(which): Query<Which>,
    ) -> Response {
        let chrome = viewer.chrome("Disconnect an application", "apps");
        let found = match state.store.connections(Some(viewer.user())).await {
            Ok(connections) => connections.into_iter().any(|c| c.client_id == which.client),
            Err(StoreError::Unsupported(_)) => false,
            Err(error) => {
                tracing::warn!(%error, "connected apps page: store unavailable");
                return message::unavailable();
            }
        };
        if !found {
            return not_connected(chrome);
        }
        let name = match state.store.client(&which.client).await {
            Ok(client) => client.map_or_else(|| which.client.clone(), |c| c.name),
            Err(_) => return message::unavailable(),
        };
        let page = ConfirmDisconnect {
            chrome,
            client_id: which.client,
            name,
        };
        render(StatusCode::OK, &page)
    }

    /// `POST /apps/disconnect`: ends the connection ([`Store::disconnect`]), audited.
    pub(super) async fn disconnect<B: Backend>(
        State(state): State<ManageState<Store<B>>>,
        viewer: Viewer,
        Form(which): Form<Which>,
    ) -> Response {
        let chrome = viewer.chrome("Disconnect an application", "apps");
        let user = viewer.user();
        let connection = match state.store.backend().connection(user, &which.client).await {
            Ok(Some(connection)) => connection,
            Ok(None) | Err(StoreError::Unsupported(_)) => return not_connected(chrome),
            Err(error) => {
                tracing::warn!(%error, "connected apps page: store unavailable");
                return message::unavailable();
            }
        };
        match state.store.disconnect(user, &which.client).await {
            Ok(true) => {}
            Ok(false) => return not_connected(chrome),
            Err(error) => {
                tracing::warn!(%error, "connected apps page: disconnect failed");
                return message::unavailable();
            }
        }
        if let Some(writer) = &state.audit {
            let event = AuditEvent::new(
                state.store.clock().now(),
                AuditAction::AgentDisabled,
                Outcome::Success,
            )
            .agent(connection.agent)
            .actor(user.clone())
            .detail(format!(
                "client {} disconnected on the connected apps page: its tokens revoked",
                which.client
            ));
            writer.record(event).await;
        }
        Redirect::to("/apps?done=disconnected").into_response()
    }
}
