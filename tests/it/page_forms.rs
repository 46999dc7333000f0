//! What a browser does with the pages' forms, for tests that sign in over HTTP: every form post
//! carries the CSRF token bound to the request's cookie (`tower_agent_auth::server::FormToken`).
//! Signing in takes `GET /login` first, for the pre-session cookie and the form's token.
#![cfg(feature = "server")]
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_agent_auth::server::{FORM_COOKIE, FORM_FIELD, FormToken};

/// The value of the first hidden `csrf` field of `html`.
pub fn csrf_field(html: &str) -> Option<String> {
    let marker = format!(r#"name="{FORM_FIELD}" value=""#);
    let value = html.split_once(&marker)?.1.split_once('"')?.0;
    Some(crate::oauth_support::unescape(value))
}

/// `fields` as a form body.
fn encoded(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The `POST /login` a browser sends with the sign-in form of `app`: `GET /login` first, whose
/// pre-session cookie and hidden `csrf` field go with `fields` (user, password, return).
pub async fn sign_in_request(app: &Router, fields: &[(&str, &str)]) -> Request<Body> {
    let page = app
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "GET /login");
    let cookie = page
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .find(|pair| pair.starts_with(&format!("{FORM_COOKIE}=")))
        .expect("GET /login sets the pre-session cookie")
        .to_owned();
    let bytes = page.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&bytes);
    let token = csrf_field(&html).expect("the sign-in form has a token");
    let mut fields = fields.to_vec();
    fields.push((FORM_FIELD, &token));
    Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(encoded(&fields)))
        .unwrap()
}

/// A form post of `fields` to `uri` with `cookie` (`name=value`: the session cookie, or the
/// pre-session one) and the token bound to it, as the page the form is on carries it.
pub fn form_post(uri: &str, cookie: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let secret = cookie.split_once('=').map_or(cookie, |(_, value)| value);
    let token = FormToken::for_secret(secret);
    let mut fields = fields.to_vec();
    fields.push((FORM_FIELD, token.as_str()));
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(encoded(&fields)))
        .unwrap()
}
