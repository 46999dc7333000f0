use std::sync::Arc;

use ::axum::Router;
use ::axum::extract::{Form, State};
use ::axum::response::{Html, IntoResponse, Response};
use ::axum::routing::{get, post};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::password::PasswordVerifier;
use super::sessions::{SESSION_COOKIE, Sessions};

#[derive(Clone)]
struct LoginState {
    sessions: Sessions,
    verifier: Arc<dyn PasswordVerifier>,
    secure: bool,
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><form method="post" action="/login">
<label>User <input name="user" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>"#;

/// `GET /login` (a form), `POST /login` (form fields `user`, `password`: on success a session
/// cookie — `HttpOnly`, `SameSite=Lax`, `Secure` when `secure` — and a redirect to `/`; 401
/// otherwise) and `POST /logout`.
pub fn login_router(
    sessions: Sessions,
    verifier: Arc<dyn PasswordVerifier>,
    secure: bool,
) -> Router {
    Router::new()
        .route("/login", get(|| async { Html(FORM) }).post(login))
        .route("/logout", post(logout))
        .with_state(LoginState {
            sessions,
            verifier,
            secure,
        })
}

fn cookie(value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

async fn login(State(state): State<LoginState>, Form(form): Form<Credentials>) -> Response {
    match state.verifier.verify(&form.user, &form.password).await {
        Ok(Some(user)) => match state.sessions.start(user.clone()) {
            Ok(secret) => {
                tracing::info!(user = user.as_str(), "signed in");
                (
                    StatusCode::SEE_OTHER,
                    [
                        (SET_COOKIE, cookie(&secret, None, state.secure)),
                        (LOCATION, "/".to_owned()),
                    ],
                )
                    .into_response()
            }
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Ok(None) => {
            // Not the submitted name: it is sometimes a mistyped password.
            tracing::info!("sign-in refused");
            (StatusCode::UNAUTHORIZED, "invalid user or password\n").into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in: user store unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn logout(State(state): State<LoginState>, headers: HeaderMap) -> Response {
    if let Some(secret) = Sessions::cookie(&headers) {
        state.sessions.end(secret);
    }
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, cookie("", Some(0), state.secure))],
    )
        .into_response()
}
