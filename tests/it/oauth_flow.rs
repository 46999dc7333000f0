//! The authorization endpoint and the code grant: sign-in, consent, PKCE, codes, replays,
//! and who may consent.
#![cfg(feature = "oauth")]

use http::{StatusCode, header};
use tower_agent_auth::store::AccessRole;
use tower_agent_auth::store::Backend as _;

use crate::oauth_support::{ISSUER, OAuth, REDIRECT, RESOURCE, checkboxes, form, pkce};

/// The parameters of an authorization request of `client` for `scope`.
fn request<'a>(client: &'a str, challenge: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("state", "s-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("scope", scope),
        ("prompt", "consent"),
    ]
}

#[tokio::test]
async fn the_code_flow_gives_a_token_that_works_through_the_layer() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let (verifier, challenge) = pkce();
    oauth.secret("verifier", &verifier);

    // Not signed in: to the sign-in page, with the way back.
    let params = request(&client, &challenge, "notes:read notes:write");
    let answer = oauth
        .get(&format!("/oauth/authorize?{}", form(&params)), None)
        .await;
    assert_eq!(answer.status, StatusCode::FOUND);
    let location = answer.location().unwrap().to_owned();
    assert!(
        location.starts_with("/login?return=%2Foauth%2Fauthorize%3F"),
        "{location}"
    );
    let form_page = oauth.get(&location, None).await;
    assert!(
        form_page
            .body
            .contains(r#"name="return" value="/oauth/authorize?"#),
        "{}",
        form_page.body
    );
    let back_to: String =
        url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .find(|(n, _)| n == "return")
            .unwrap()
            .1
            .into_owned();
    // The form's token, bound to the pre-session cookie the page set.
    let token = crate::page_forms::csrf_field(&form_page.body).expect("a token");
    let pre_session = form_page.headers[header::SET_COOKIE].to_str().unwrap();
    let pre_session = pre_session.split(';').next().unwrap();
    let fields = [
        ("user", "alice"),
        ("password", "pw"),
        ("return", &back_to),
        ("csrf", &token),
    ];
    let signed_in = oauth
        .post_form("/login", form(&fields), &[("cookie", pre_session)])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), Some(back_to.as_str()));
    let cookie = signed_in.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // The consent page: hardened, and it says who, as whom, where, what, how long.
    let page = oauth.get(&back_to, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // The layout's one script, from this server; nothing inline.
    assert_eq!(
        page.body.matches("<script").count(),
        page.body
            .matches(r#"<script src="/assets/app.js" defer></script>"#)
            .count(),
        "{}",
        page.body
    );
    for shown in [
        "Test MCP client",
        "self-registered",
        "alice",
        "127.0.0.1",
        "hour",
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not shown: {}",
            page.body
        );
    }
    assert_eq!(checkboxes(&page.body), ["notes:read", "notes:write"]);

    let answer = oauth.decide(&cookie, &page, None, "allow").await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert!(answer.location().unwrap().starts_with(REDIRECT));
    assert_eq!(answer.location_param("state").as_deref(), Some("s-123"));
    assert_eq!(answer.location_param("iss").as_deref(), Some(ISSUER));
    let code = answer.location_param("code").unwrap();

    let tokens = oauth.exchange(&client, &code, &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(tokens.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(tokens.headers[header::CONTENT_TYPE], "application/json");
    let body = tokens.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "notes:read notes:write");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt_"));
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);
    assert_eq!(oauth.api("/api/notes/write", access).await, StatusCode::OK);

    // The connection: one agent of alice's for the client, reused at the next consent.
    let connections = oauth.store.backend().connections(None).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].client_id, client);
    let agent = oauth
        .store
        .agent(&connections[0].agent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.owner.as_str(), "alice");
    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    assert_eq!(
        oauth.exchange(&client, &code, &verifier).await.status,
        StatusCode::OK
    );
    assert_eq!(
        oauth.store.backend().connections(None).await.unwrap().len(),
        1
    );
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn pkce_plain_is_refused_and_a_wrong_verifier_is_invalid_grant() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (verifier, _) = pkce();
    let mut params = request(&client, &verifier, "notes:read");
    params.retain(|(n, _)| *n != "code_challenge_method");
    params.push(("code_challenge_method", "plain"));
    let answer = oauth.consent_page(&cookie, &params).await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert_eq!(
        answer.location_param("error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(answer.location_param("state").as_deref(), Some("s-123"));
    assert_eq!(answer.location_param("iss").as_deref(), Some(ISSUER));

    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    let (wrong, _) = pkce();
    let answer = oauth.exchange(&client, &code, &wrong).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_grant");
    // The code was spent by the failed attempt.
    let answer = oauth.exchange(&client, &code, &verifier).await;
    assert_eq!(answer.json()["error"], "invalid_grant");
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_what_it_issued() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    let first = oauth.exchange(&client, &code, &verifier).await.json();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);

    let replay = oauth.exchange(&client, &code, &verifier).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(
        oauth.api("/api/notes", access).await,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = oauth
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", refresh),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    let events = oauth.events().await;
    assert!(events.iter().any(|e| e.action.as_str() == "code_replayed"));
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn an_expired_code_and_another_clients_code_are_invalid_grant() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let other = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    let answer = oauth.exchange(&other, &code, &verifier).await;
    assert_eq!(answer.json()["error"], "invalid_grant");
    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    oauth.clock.advance(std::time::Duration::from_secs(61));
    let answer = oauth.exchange(&client, &code, &verifier).await;
    assert_eq!(answer.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn an_unknown_client_or_redirect_gets_a_page_never_a_redirect() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (_, challenge) = pkce();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        request("c_unknown", &challenge, "notes:read"),
        request("nosuchagent", &challenge, "notes:read"),
        {
            let mut p = request(&client, &challenge, "notes:read");
            p.retain(|(n, _)| *n != "redirect_uri");
            p.push(("redirect_uri", "https://evil.example/cb"));
            p
        },
        {
            let mut p = request(&client, &challenge, "notes:read");
            p.retain(|(n, _)| *n != "redirect_uri");
            p.push(("redirect_uri", "http://127.0.0.1:9999/callback/../evil"));
            p
        },
    ];
    for params in cases {
        for cookie in [Some(cookie.as_str()), None] {
            let answer = oauth
                .get(&format!("/oauth/authorize?{}", form(&params)), cookie)
                .await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{params:?}");
            assert!(answer.location().is_none(), "{params:?}");
            assert!(answer.body.contains("<!doctype html>"));
        }
    }
}

#[tokio::test]
async fn only_the_owner_or_an_admin_consents_for_a_registered_agent() {
    let oauth = OAuth::new().await;
    let (_, challenge) = pkce();
    let mut params = request("writer", &challenge, "notes:read");
    params.retain(|(n, _)| *n != "redirect_uri" && *n != "client_id");
    params.push(("redirect_uri", "http://127.0.0.1:45678/callback"));
    // `agent_slug` names the agent's client as well as `client_id` does.
    params.push(("agent_slug", "writer"));

    let mallory = oauth.sign_in("mallory").await;
    let answer = oauth.consent_page(&mallory, &params).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.location().is_none());
    let events = oauth.events().await;
    let refused = events
        .iter()
        .find(|e| e.action.as_str() == "consent_refused")
        .expect("the attempt is audited");
    assert_eq!(refused.actor.as_ref().map(|a| a.as_str()), Some("mallory"));
    assert_eq!(refused.agent.as_ref(), Some(&oauth.writer_agent.id));

    // An admin of the agent may; the owner may.
    oauth
        .store
        .grant(&oauth.writer_agent.id, &"bob".into(), AccessRole::Admin)
        .await
        .unwrap();
    for user in ["bob", "alice"] {
        let cookie = oauth.sign_in(user).await;
        let page = oauth.consent_page(&cookie, &params).await;
        assert_eq!(page.status, StatusCode::OK, "{user}: {}", page.body);
        assert!(page.body.contains("writer") && page.body.contains("registered agent"));
        let answer = oauth.decide(&cookie, &page, None, "allow").await;
        assert_eq!(answer.status, StatusCode::FOUND, "{user}");
        assert!(answer.location_param("code").is_some());
    }
}

#[tokio::test]
async fn a_registered_agents_code_gives_a_token_of_that_agent() {
    let oauth = OAuth::new().await;
    let cookie = oauth.sign_in("alice").await;
    let (verifier, challenge) = pkce();
    oauth.secret("verifier", &verifier);
    let redirect = "http://127.0.0.1:45678/callback";
    let mut params = request("writer", &challenge, "notes:read");
    params.retain(|(n, _)| *n != "redirect_uri");
    params.push(("redirect_uri", redirect));
    let page = oauth.consent_page(&cookie, &params).await;
    let answer = oauth.decide(&cookie, &page, None, "allow").await;
    let code = answer.location_param("code").unwrap();
    let tokens = oauth
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "writer"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let access = tokens.json()["access_token"].as_str().unwrap().to_owned();
    assert!(
        access.starts_with("acme_writer_"),
        "an agent token of the agent itself"
    );
    assert_eq!(oauth.api("/api/notes", &access).await, StatusCode::OK);
    assert_eq!(
        oauth.api("/api/notes/write", &access).await,
        StatusCode::FORBIDDEN
    );
    // No connection: the agent is the client.
    assert!(
        oauth
            .store
            .backend()
            .connections(None)
            .await
            .unwrap()
            .is_empty()
    );
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn a_later_consent_widens_the_same_connection() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &client, "notes:read", None).await;
    let first = oauth.exchange(&client, &code, &verifier).await.json();
    let first_access = first["access_token"].as_str().unwrap();
    assert_eq!(
        oauth.api("/api/notes/write", first_access).await,
        StatusCode::FORBIDDEN
    );
    // Step-up: the same client asks for more.
    let (code, verifier) = oauth
        .authorize(&cookie, &client, "notes:read notes:write", None)
        .await;
    let second = oauth.exchange(&client, &code, &verifier).await.json();
    let second_access = second["access_token"].as_str().unwrap();
    assert_eq!(
        oauth.api("/api/notes/write", second_access).await,
        StatusCode::OK
    );
    // One connection, one agent, and what was granted before still works.
    let connections = oauth.store.backend().connections(None).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(oauth.api("/api/notes", first_access).await, StatusCode::OK);
    // Disconnecting (disabling the agent) ends every token of the client.
    oauth
        .store
        .set_agent_status(
            &connections[0].agent,
            tower_agent_auth::store::AgentStatus::Disabled,
        )
        .await
        .unwrap();
    assert_eq!(
        oauth.api("/api/notes", second_access).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, challenge) = pkce();
    let answer = oauth
        .consent_page(&cookie, &request(&client, &challenge, "notes:read"))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.location().is_none());
}

#[tokio::test]
async fn an_unticked_capability_is_absent_from_the_token() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth
        .authorize(
            &cookie,
            &client,
            "notes:read notes:write",
            Some(&["notes:read"]),
        )
        .await;
    let tokens = oauth.exchange(&client, &code, &verifier).await.json();
    assert_eq!(tokens["scope"], "notes:read");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);
    assert_eq!(
        oauth.api("/api/notes/write", access).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn what_the_role_does_not_allow_is_not_offered() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("bob").await;
    let (_, challenge) = pkce();
    let page = oauth
        .consent_page(&cookie, &request(&client, &challenge, "notes:* admin:all"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(checkboxes(&page.body), ["notes:read"]);
    assert!(page.body.contains("admin:all"), "listed as not grantable");
    // Nothing grantable at all: back to the client with invalid_scope.
    let answer = oauth
        .consent_page(&cookie, &request(&client, &challenge, "admin:all"))
        .await;
    assert_eq!(
        answer.location_param("error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn deny_sends_access_denied_with_state_and_iss() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (_, challenge) = pkce();
    let page = oauth
        .consent_page(&cookie, &request(&client, &challenge, "notes:read"))
        .await;
    let answer = oauth.decide(&cookie, &page, None, "deny").await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert_eq!(
        answer.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(answer.location_param("state").as_deref(), Some("s-123"));
    assert_eq!(answer.location_param("iss").as_deref(), Some(ISSUER));
    assert!(answer.location_param("code").is_none());
    assert!(
        oauth
            .store
            .backend()
            .connections(None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_consent_form_is_good_for_its_session_and_its_parameters_only() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let alice = oauth.sign_in("alice").await;
    let (_, challenge) = pkce();
    let page = oauth
        .consent_page(&alice, &request(&client, &challenge, "notes:read"))
        .await;
    // Another session of the same person.
    let other_session = oauth.sign_in("alice").await;
    let answer = oauth.decide(&other_session, &page, None, "allow").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.location().is_none());
    // A parameter changed under the same token.
    let tampered = crate::oauth_support::Answer {
        status: page.status,
        headers: page.headers.clone(),
        body: page.body.replace("notes:read", "notes:write"),
    };
    let answer = oauth.decide(&alice, &tampered, None, "allow").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // A post from another site with the cookie.
    let answer = oauth
        .post_form(
            "/oauth/authorize",
            form(&[("client_id", &client)]),
            &[
                (header::COOKIE.as_str(), &alice),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_resource_this_server_does_not_serve_is_invalid_target() {
    let oauth = OAuth::new().await;
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (_, challenge) = pkce();
    let mut params = request(&client, &challenge, "notes:read");
    params.retain(|(n, _)| *n != "resource");
    params.push(("resource", "https://elsewhere.example/mcp"));
    let answer = oauth.consent_page(&cookie, &params).await;
    assert_eq!(
        answer.location_param("error").as_deref(),
        Some("invalid_target")
    );
    assert_eq!(answer.location_param("iss").as_deref(), Some(ISSUER));
}
