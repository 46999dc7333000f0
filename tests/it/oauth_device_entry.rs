//! The device flow's pages under attack: wrong user codes limited per session and per
//! address, forms bound to their session and code, a registered agent allowed by its owner
//! only.
#![cfg(feature = "oauth")]

use std::num::NonZeroU32;
use std::time::Duration;

use http::{StatusCode, header};
use serde_json::Value;
use tower_agent_auth::audit::AuditAction;
use tower_agent_auth::oauth::{AuthorizationServer, DeviceFlow};
use tower_agent_auth::store::MemoryBackend;

use crate::oauth_device::{
    assert_polling, device, device_client, enter, entry_form, poll, post, respond,
};
use crate::oauth_support::{OAuth, form, hidden_fields};

/// Limits small enough to reach: 3 wrong codes per session, 5 per address (every request of
/// these tests comes from one unknown address).
fn strict(server: AuthorizationServer<MemoryBackend>) -> AuthorizationServer<MemoryBackend> {
    server.device_flow(DeviceFlow {
        wrong_entries_per_session: NonZeroU32::new(3).unwrap(),
        wrong_entries_per_address: NonZeroU32::new(5).unwrap(),
        ..DeviceFlow::default()
    })
}

#[tokio::test]
async fn wrong_codes_are_limited_per_session_and_per_address() {
    let oauth = OAuth::configured(strict).await;
    let client = device_client(&oauth).await;
    let (_, user_code) = device(&oauth, &client, "notes:read").await;
    let wrong = if user_code == "BCDF-GHJK" {
        "BCDF-GHJL"
    } else {
        "BCDF-GHJK"
    };
    let cookie = oauth.sign_in("alice").await;
    let page = entry_form(&oauth, &cookie).await;

    // Not a code at all: said so, and not counted.
    for typed in ["", "1234-5678", "BCDF-GHJ", "AEIOU-BCD"] {
        let answer = enter(&oauth, &cookie, &page, typed).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{typed:?}");
        assert!(
            answer.body.contains("A code is 8 letters"),
            "{}",
            answer.body
        );
    }
    // Wrong codes: the form again, with the tries left; then 429 for the session, even for
    // the right code.
    for left in [
        "You can try 2 more times.",
        "You can try once more.",
        "That was the last try",
    ] {
        let answer = enter(&oauth, &cookie, &page, wrong).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.body.contains(left), "{left}: {}", answer.body);
        assert!(answer.body.contains("name=\"user_code\""), "the form again");
    }
    for typed in [wrong, user_code.as_str()] {
        let answer = enter(&oauth, &cookie, &page, typed).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        let wait: u64 = answer.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((800..=900).contains(&wait), "{wait}");
        assert!(answer.body.contains("Wait 15 minutes"), "{}", answer.body);
    }

    // Another session has its own tries, but the address has only 2 more in all.
    let other = oauth.sign_in("alice").await;
    let page = entry_form(&oauth, &other).await;
    assert_eq!(
        enter(&oauth, &other, &page, wrong).await.status,
        StatusCode::BAD_REQUEST
    );
    let right = enter(&oauth, &other, &page, &user_code).await;
    assert_eq!(
        right.status,
        StatusCode::OK,
        "a right code costs no try: {}",
        right.body
    );
    assert_eq!(
        enter(&oauth, &other, &page, wrong).await.status,
        StatusCode::BAD_REQUEST
    );
    let third = oauth.sign_in("bob").await;
    let page = entry_form(&oauth, &third).await;
    let refused = enter(&oauth, &third, &page, &user_code).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );

    // The trail says so once per window, never with a code.
    let events = oauth.events().await;
    let throttled: Vec<_> = (events.iter())
        .filter(|e| e.action == AuditAction::DeviceEntryThrottled)
        .collect();
    assert_eq!(throttled.len(), 2, "one per window: {throttled:?}");
    let trail = format!("{events:?}");
    assert!(!trail.contains(wrong) && !trail.contains(&user_code));
}

#[tokio::test]
async fn the_forms_are_bound_to_their_session_and_code() {
    let oauth = OAuth::new().await;
    let client = device_client(&oauth).await;
    let (_, first) = device(&oauth, &client, "notes:read").await;
    let (second_code, second) = device(&oauth, &client, "notes:read").await;
    let alice = oauth.sign_in("alice").await;
    let bob = oauth.sign_in("bob").await;
    let page = entry_form(&oauth, &alice).await;

    // The entry form of another session, or none.
    let refused = enter(&oauth, &bob, &page, &first).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("expired or was not shown to you"),
        "{}",
        refused.body
    );
    let bare = post(&oauth, &alice, &[("user_code".into(), first.clone())]).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);

    // The consent form for the first code, posted by another session or for the second code.
    let consent = enter(&oauth, &alice, &page, &first).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert_eq!(
        respond(&oauth, &bob, &consent, "allow").await.status,
        StatusCode::FORBIDDEN
    );
    let mut fields = hidden_fields(&consent.body);
    for (name, value) in &mut fields {
        if name == "user_code" {
            *value = second.clone();
        }
    }
    fields.push(("capability".into(), "notes:read".into()));
    fields.push(("decision".into(), "allow".into()));
    assert_eq!(
        post(&oauth, &alice, &fields).await.status,
        StatusCode::FORBIDDEN
    );
    oauth.clock.advance(Duration::from_secs(6));
    assert_polling(
        &poll(&oauth, &client, &second_code).await,
        "authorization_pending",
    );

    // Not signed in, a post is sent to sign in; an agent's token is no person.
    let anonymous = oauth
        .post_form("/oauth/device", form(&[("user_code", &first)]), &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::FOUND);
    let token = writer_token(&oauth).await;
    let agent = oauth
        .post_form(
            "/oauth/device",
            form(&[("user_code", &first)]),
            &[(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN, "{}", agent.body);
}

/// A token of alice's agent `writer`, minted directly.
async fn writer_token(oauth: &OAuth) -> String {
    let issued = oauth
        .store
        .create_token(
            &oauth.writer_agent.id,
            tower_agent_auth::store::NewToken::new("t"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    oauth.secret("agent token", &token);
    token
}

#[tokio::test]
async fn a_registered_agent_is_allowed_only_by_its_owner_and_grants_no_more_than_its_role() {
    let oauth = OAuth::new().await;
    // `writer`, alice's registered agent, is the client: only alice (or an admin) may allow.
    let (code, user_code) = device(&oauth, "writer", "notes:read notes:write").await;
    let bob = oauth.sign_in("bob").await;
    let page = entry_form(&oauth, &bob).await;
    let refused = enter(&oauth, &bob, &page, &user_code).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("owner"), "{}", refused.body);

    let alice = oauth.sign_in("alice").await;
    let page = entry_form(&oauth, &alice).await;
    let consent = enter(&oauth, &alice, &page, &user_code).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(
        consent.body.contains("a registered agent"),
        "{}",
        consent.body
    );
    // The person unticks notes:write.
    let mut fields = hidden_fields(&consent.body);
    fields.push(("capability".into(), "notes:read".into()));
    fields.push(("decision".into(), "allow".into()));
    let done = post(&oauth, &alice, &fields).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    // The agent's tokens hold what was ticked, no more.
    oauth.clock.advance(Duration::from_secs(6));
    let issued = poll(&oauth, "writer", &code).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let tokens: Value = issued.json();
    assert_eq!(tokens["scope"], "notes:read");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(access.starts_with("acme_writer_"), "the agent's own token");
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);
    assert_eq!(
        oauth.api("/api/notes/write", access).await,
        StatusCode::FORBIDDEN
    );
    oauth.assert_no_secret_leaked().await;
}
