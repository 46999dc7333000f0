//! The device flow (RFC 8628) through the application: the device authorization endpoint, the
//! person's pages (sign-in, the user code, consent), polling with its errors, single use, and
//! where the codes may travel. The limits on wrong codes and the forms' bindings are in
//! [`oauth_device_entry`](super::oauth_device_entry).
#![cfg(feature = "oauth")]

use std::time::Duration;

use http::{StatusCode, header};
use serde_json::json;
use tower_agent_auth::audit::AuditAction;

use crate::oauth_support::{
    Answer, ISSUER, OAuth, OTHER_RESOURCE, RESOURCE, checkboxes, form, hidden_fields,
};

pub(crate) const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The letters of user codes.
const ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

/// A public client that registered for the device grant alone (no redirect URI): its id.
pub(crate) async fn device_client(oauth: &OAuth) -> String {
    let answer = oauth
        .register(json!({
            "client_name": "Headless CLI",
            "grant_types": [GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["redirect_uris"], json!([]), "{body}");
    assert_eq!(body["response_types"], json!([]), "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

/// `POST /oauth/device_authorization` with `pairs`; the device code is noted as a secret.
pub(crate) async fn ask(oauth: &OAuth, pairs: &[(&str, &str)]) -> Answer {
    let answer = oauth
        .post_form("/oauth/device_authorization", form(pairs), &[])
        .await;
    if let Some(code) = answer.json()["device_code"].as_str() {
        oauth.secret("device code", code);
    }
    answer
}

/// A device's request for `scope` bound to [`RESOURCE`]: (device code, user code).
pub(crate) async fn device(oauth: &OAuth, client: &str, scope: &str) -> (String, String) {
    let answer = ask(
        oauth,
        &[
            ("client_id", client),
            ("scope", scope),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

/// One poll of the token endpoint.
pub(crate) async fn poll(oauth: &OAuth, client: &str, device_code: &str) -> Answer {
    oauth
        .token(
            &[
                ("grant_type", GRANT),
                ("client_id", client),
                ("device_code", device_code),
            ],
            None,
        )
        .await
}

/// A polling error: 400, exactly this code, JSON not stored.
pub(crate) fn assert_polling(answer: &Answer, error: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.json()["error"], error, "{}", answer.body);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
}

/// The entry form as `cookie`'s session sees it.
pub(crate) async fn entry_form(oauth: &OAuth, cookie: &str) -> Answer {
    let page = oauth.get("/oauth/device", Some(cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}

/// Enters `typed` in the entry form `page` (its CSRF token) as `cookie`.
pub(crate) async fn enter(oauth: &OAuth, cookie: &str, page: &Answer, typed: &str) -> Answer {
    let mut fields = hidden_fields(&page.body);
    fields.push(("user_code".into(), typed.into()));
    post(oauth, cookie, &fields).await
}

pub(crate) async fn post(oauth: &OAuth, cookie: &str, fields: &[(String, String)]) -> Answer {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    oauth
        .post_form(
            "/oauth/device",
            form(&pairs),
            &[(header::COOKIE.as_str(), cookie)],
        )
        .await
}

/// Answers the consent page `page` with `decision`, every capability shown ticked.
pub(crate) async fn respond(oauth: &OAuth, cookie: &str, page: &Answer, decision: &str) -> Answer {
    let mut fields = hidden_fields(&page.body);
    for capability in checkboxes(&page.body) {
        fields.push(("capability".into(), capability));
    }
    fields.push(("decision".into(), decision.into()));
    post(oauth, cookie, &fields).await
}

#[tokio::test]
async fn a_device_polls_until_the_person_allows_it_and_its_code_is_single_use() {
    let oauth = OAuth::new().await;
    let metadata = oauth
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .json();
    assert_eq!(
        metadata["device_authorization_endpoint"],
        format!("{ISSUER}/oauth/device_authorization")
    );
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
    let client = device_client(&oauth).await;

    // The device asks: the answer RFC 8628 §3.2 describes, not stored by caches.
    let asked = ask(
        &oauth,
        &[
            ("client_id", &client),
            ("scope", "notes:read notes:write"),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert_eq!(asked.headers[header::CACHE_CONTROL], "no-store");
    let body = asked.json();
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert!(device_code.len() >= 43, "{body}");
    let (head, tail) = user_code.split_once('-').expect("BCDF-GHJK");
    assert_eq!((head.len(), tail.len()), (4, 4), "{user_code}");
    assert!(
        format!("{head}{tail}")
            .chars()
            .all(|c| ALPHABET.contains(c)),
        "{user_code}"
    );
    assert_eq!(body["verification_uri"], format!("{ISSUER}/oauth/device"));
    assert_eq!(
        body["verification_uri_complete"],
        format!("{ISSUER}/oauth/device?user_code={user_code}")
    );
    assert_eq!(
        (body["expires_in"].as_u64(), body["interval"].as_u64()),
        (Some(600), Some(5))
    );

    // Polled at once: too soon (the interval counts from the request), and it becomes 10 s.
    let answer = poll(&oauth, &client, &device_code).await;
    assert_polling(&answer, "slow_down");
    oauth.clock.advance(Duration::from_secs(5));
    assert_polling(&poll(&oauth, &client, &device_code).await, "slow_down");
    oauth.clock.advance(Duration::from_secs(15));
    assert_polling(
        &poll(&oauth, &client, &device_code).await,
        "authorization_pending",
    );

    // The person follows the complete URI: not signed in, to the sign-in page and back.
    let typed = user_code.to_lowercase().replace('-', " ");
    let start = format!("/oauth/device?{}", form(&[("user_code", &typed)]));
    let answer = oauth.get(&start, None).await;
    assert_eq!(answer.status, StatusCode::FOUND);
    let back = format!("/oauth/device?user_code={user_code}");
    let expected: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    assert_eq!(
        answer.location(),
        Some(format!("/login?return={expected}").as_str())
    );
    let cookie = oauth.sign_in("alice").await;
    let page = oauth.get(&back, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        page.body.contains(&format!("value=\"{user_code}\"")),
        "filled in: {}",
        page.body
    );

    // The code as typed (case and spaces ignored): the consent page, with the code to check.
    let consent = enter(&oauth, &cookie, &page, &typed).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.body.contains("Headless CLI"), "{}", consent.body);
    assert!(
        consent
            .body
            .contains(&format!("<strong>{user_code}</strong>")),
        "{}",
        consent.body
    );
    assert!(!consent.body.contains("sent back"), "{}", consent.body);
    assert_eq!(checkboxes(&consent.body), ["notes:read", "notes:write"]);
    let done = respond(&oauth, &cookie, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    // The next poll on time: the tokens, as the code grant issues them.
    oauth.clock.advance(Duration::from_secs(10));
    let issued = poll(&oauth, &client, &device_code).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let tokens = issued.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "notes:read notes:write");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(oauth.api("/api/notes", &access).await, StatusCode::OK);
    assert_eq!(oauth.api("/api/notes/write", &access).await, StatusCode::OK);

    // Single use: presented again, invalid_grant, and what it issued is revoked.
    let replay = poll(&oauth, &client, &device_code).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(
        oauth.api("/api/notes", &access).await,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = oauth
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", &refresh),
            ],
            None,
        )
        .await;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "{}",
        refreshed.body
    );
    // The entry page no longer knows the code.
    let page = entry_form(&oauth, &cookie).await;
    assert_eq!(
        enter(&oauth, &cookie, &page, &user_code).await.status,
        StatusCode::BAD_REQUEST
    );

    let events = oauth.events().await;
    let actions: Vec<AuditAction> = events.iter().map(|e| e.action).collect();
    assert!(
        actions.contains(&AuditAction::DeviceApproved),
        "{actions:?}"
    );
    assert!(actions.contains(&AuditAction::CodeReplayed), "{actions:?}");
    let trail = format!("{events:?}");
    assert!(!trail.contains(&user_code) && !trail.contains(&user_code.replace('-', "")));
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn a_denied_an_expired_and_a_foreign_device_code_are_refused_as_rfc_8628_says() {
    let oauth = OAuth::new().await;
    let client = device_client(&oauth).await;
    let cookie = oauth.sign_in("alice").await;

    // Denied: access_denied, and so it stays.
    let (denied, user_code) = device(&oauth, &client, "notes:read").await;
    let page = entry_form(&oauth, &cookie).await;
    let consent = enter(&oauth, &cookie, &page, &user_code).await;
    let done = respond(&oauth, &cookie, &consent, "deny").await;
    assert!(done.body.contains("Access denied"), "{}", done.body);
    oauth.clock.advance(Duration::from_secs(6));
    assert_polling(&poll(&oauth, &client, &denied).await, "access_denied");
    // The consent form, posted again, finds nothing pending.
    let again = respond(&oauth, &cookie, &consent, "allow").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    oauth.clock.advance(Duration::from_secs(6));
    assert_polling(&poll(&oauth, &client, &denied).await, "access_denied");

    // Another client's device code is unknown to this one, and is not spent by it.
    let other = device_client(&oauth).await;
    let (code, _) = device(&oauth, &client, "notes:read").await;
    oauth.clock.advance(Duration::from_secs(6));
    let foreign = poll(&oauth, &other, &code).await;
    assert_eq!(foreign.json()["error"], "invalid_grant", "{}", foreign.body);
    assert_polling(&poll(&oauth, &client, &code).await, "authorization_pending");

    // A wrong resource at the token endpoint: invalid_target, nothing spent.
    let wrong = oauth
        .token(
            &[
                ("grant_type", GRANT),
                ("client_id", &client),
                ("device_code", &code),
                ("resource", OTHER_RESOURCE),
            ],
            None,
        )
        .await;
    assert_eq!(wrong.json()["error"], "invalid_target", "{}", wrong.body);

    // Past its lifetime: expired_token, and the page no longer takes its code.
    let (late, late_user_code) = device(&oauth, &client, "notes:read").await;
    oauth.clock.advance(Duration::from_secs(601));
    assert_polling(&poll(&oauth, &client, &late).await, "expired_token");
    let page = entry_form(&oauth, &cookie).await;
    let refused = enter(&oauth, &cookie, &page, &late_user_code).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("not right, or it has expired"),
        "{}",
        refused.body
    );

    // Unknown and missing device codes.
    assert_eq!(
        poll(&oauth, &client, "dc_nothing").await.json()["error"],
        "invalid_grant"
    );
    let missing = oauth
        .token(&[("grant_type", GRANT), ("client_id", &client)], None)
        .await;
    assert_eq!(
        missing.json()["error"],
        "invalid_request",
        "{}",
        missing.body
    );
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn the_device_authorization_endpoint_checks_the_client_the_scope_and_the_resource() {
    let oauth = OAuth::new().await;
    let client = device_client(&oauth).await;
    let error = |answer: Answer| (answer.status, answer.json()["error"].clone());
    let unknown = ask(
        &oauth,
        &[("client_id", "c_nobody"), ("scope", "notes:read")],
    )
    .await;
    assert_eq!(
        error(unknown),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    let none = ask(&oauth, &[("scope", "notes:read")]).await;
    assert_eq!(
        error(none),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    let (id, _) = oauth.introspector().await;
    let no_secret = ask(&oauth, &[("client_id", &id), ("scope", "notes:read")]).await;
    assert_eq!(
        error(no_secret),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    let bad_scope = ask(&oauth, &[("client_id", &client), ("scope", "Not A Scope")]).await;
    assert_eq!(
        error(bad_scope),
        (StatusCode::BAD_REQUEST, json!("invalid_scope"))
    );
    let elsewhere = ask(
        &oauth,
        &[
            ("client_id", &client),
            ("resource", "https://elsewhere.example/api"),
        ],
    )
    .await;
    assert_eq!(
        error(elsewhere),
        (StatusCode::BAD_REQUEST, json!("invalid_target"))
    );
    let twice = oauth
        .post_form(
            "/oauth/device_authorization",
            format!("client_id={client}&scope=a&scope=b"),
            &[],
        )
        .await;
    assert_eq!(
        error(twice),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );
    let json_body = oauth
        .call(
            http::Request::post("/oauth/device_authorization")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(
                    json!({"client_id": client}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(
        error(json_body),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );
    // No scope: the scopes supported, bound to the default resource.
    let default = ask(&oauth, &[("client_id", &client)]).await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.body);
}
