//! After the code: refresh rotation and reuse, introspection, revocation, and how clients
//! authenticate at the token endpoint.
#![cfg(feature = "oauth")]

use http::{StatusCode, header};
use serde_json::{Value, json};
use tower_agent_auth::store::Backend as _;

use crate::oauth_support::{ISSUER, OAuth, OTHER_RESOURCE, REDIRECT, RESOURCE, form};

/// alice consents to a new public client for `notes:read notes:write`: (client, tokens).
async fn tokens(oauth: &OAuth) -> (String, Value) {
    let client = oauth.public_client().await;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth
        .authorize(&cookie, &client, "notes:read notes:write", None)
        .await;
    let answer = oauth.exchange(&client, &code, &verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    (client, answer.json())
}

async fn refresh(
    oauth: &OAuth,
    client: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> crate::oauth_support::Answer {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", token),
    ];
    pairs.extend_from_slice(extra);
    oauth.token(&pairs, None).await
}

#[tokio::test]
async fn refresh_rotates_and_a_reuse_revokes_the_family() {
    let oauth = OAuth::new().await;
    let (client, first) = tokens(&oauth).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let first_access = first["access_token"].as_str().unwrap();

    // Refresh comes with `resource` and without `scope`.
    let second = refresh(&oauth, &client, first_refresh, &[("resource", RESOURCE)]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.headers[header::CACHE_CONTROL], "no-store");
    let second = second.json();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    let second_access = second["access_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(second["scope"], "notes:read notes:write");
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(oauth.api("/api/notes", second_access).await, StatusCode::OK);

    // The spent one again: invalid_grant, and everything of the family ends.
    let reuse = refresh(&oauth, &client, first_refresh, &[]).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        oauth.api("/api/notes", first_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        oauth.api("/api/notes", second_access).await,
        StatusCode::UNAUTHORIZED
    );
    let after = refresh(&oauth, &client, second_refresh, &[]).await;
    assert_eq!(after.json()["error"], "invalid_grant");

    let events = oauth.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.action.as_str() == "refresh_rotated")
    );
    let reused = events
        .iter()
        .find(|e| e.action.as_str() == "refresh_reused")
        .expect("the reuse is audited");
    assert_eq!(reused.actor.as_ref().map(|a| a.as_str()), Some("alice"));
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn refresh_never_widens_and_keeps_its_resource() {
    let oauth = OAuth::new().await;
    let (client, first) = tokens(&oauth).await;
    let token = first["refresh_token"].as_str().unwrap();
    let wider = refresh(&oauth, &client, token, &[("scope", "notes:* profile:read")]).await;
    assert_eq!(wider.json()["error"], "invalid_scope");
    let elsewhere = refresh(&oauth, &client, token, &[("resource", OTHER_RESOURCE)]).await;
    assert_eq!(elsewhere.json()["error"], "invalid_target");
    // Narrower is fine, for this access token; the grant stays whole for the next refresh.
    let narrower = refresh(&oauth, &client, token, &[("scope", "notes:read")]).await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.body);
    let narrower = narrower.json();
    assert_eq!(narrower["scope"], "notes:read");
    let access = narrower["access_token"].as_str().unwrap();
    assert_eq!(
        oauth.api("/api/notes/write", access).await,
        StatusCode::FORBIDDEN
    );
    let next = refresh(
        &oauth,
        &client,
        narrower["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(next.json()["scope"], "notes:read notes:write");
    // Another client cannot use it.
    let other = oauth.public_client().await;
    let stolen = refresh(
        &oauth,
        &other,
        next.json()["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn introspection_needs_an_introspecting_client() {
    let oauth = OAuth::new().await;
    let (client, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    // No authentication at all.
    let answer = oauth
        .post_form("/oauth/introspect", form(&[("token", access)]), &[])
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_client");
    // A public client names itself but proves nothing.
    let answer = oauth
        .post_form(
            "/oauth/introspect",
            form(&[("token", access), ("client_id", &client)]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // A confidential client not allowed to introspect.
    let registered = oauth
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}))
        .await
        .json();
    let answer = oauth
        .post_form(
            "/oauth/introspect",
            form(&[
                ("token", access),
                ("client_id", registered["client_id"].as_str().unwrap()),
                (
                    "client_secret",
                    registered["client_secret"].as_str().unwrap(),
                ),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    oauth.assert_no_secret_leaked().await;
}

async fn introspect(oauth: &OAuth, rs: &(String, String), pairs: &[(&str, &str)]) -> Value {
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", rs.0, rs.1)
        )
    );
    let answer = oauth
        .post_form(
            "/oauth/introspect",
            form(pairs),
            &[(header::AUTHORIZATION.as_str(), &basic)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    answer.json()
}

#[tokio::test]
async fn introspection_answers_the_fields_and_extensions_and_spends_nothing() {
    let oauth = OAuth::new().await;
    let rs = oauth.introspector().await;
    let (client, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    let answer = introspect(&oauth, &rs, &[("token", access)]).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "notes:read notes:write");
    assert_eq!(answer["client_id"], client.as_str());
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["aud"], RESOURCE);
    assert_eq!(answer["iss"], ISSUER);
    let iat = answer["iat"].as_i64().unwrap();
    assert_eq!(answer["exp"].as_i64().unwrap() - iat, 3600);
    assert!(answer["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let agent = answer["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["act"], json!({"sub": agent}));
    assert_eq!(answer["agent_type"], "autonomous");
    assert_eq!(answer["delegation_chain"], json!([]));
    assert_eq!(answer["delegation_depth"], 0);
    assert_eq!(answer["expires_on_completion"], false);
    assert!(!answer.to_string().contains(access));
    // Asking twice changes nothing, and the token still works.
    assert_eq!(introspect(&oauth, &rs, &[("token", access)]).await, answer);
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);

    // Refresh tokens introspect while live.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let answer = introspect(
        &oauth,
        &rs,
        &[
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], client.as_str());
    // Unknown and garbage tokens: inactive, nothing more.
    for token in ["acme_writer_0000", "rt_nothing", "garbage"] {
        assert_eq!(
            introspect(&oauth, &rs, &[("token", token)]).await,
            json!({"active": false})
        );
    }
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn a_token_for_another_resource_is_inactive_to_its_caller() {
    let oauth = OAuth::new().await;
    let rs = oauth.introspector().await;
    let (_, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    let answer = introspect(
        &oauth,
        &rs,
        &[("token", access), ("resource", OTHER_RESOURCE)],
    )
    .await;
    assert_eq!(answer, json!({"active": false}));
    let answer = introspect(&oauth, &rs, &[("token", access), ("resource", RESOURCE)]).await;
    assert_eq!(answer["active"], true);
}

#[tokio::test]
async fn revoking_an_access_token_ends_it_and_unknown_tokens_are_200() {
    let oauth = OAuth::new().await;
    let (client, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);
    let answer = oauth
        .post_form(
            "/oauth/revoke",
            form(&[("token", access), ("client_id", &client)]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        oauth.api("/api/notes", access).await,
        StatusCode::UNAUTHORIZED
    );
    for token in ["acme_writer_0000", "rt_nothing", "whatever"] {
        let answer = oauth
            .post_form(
                "/oauth/revoke",
                form(&[("token", token), ("client_id", &client)]),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{token}");
    }
    // Without a token: a JSON error; without a client: invalid_client.
    let answer = oauth
        .post_form("/oauth/revoke", form(&[("client_id", &client)]), &[])
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_request");
    let answer = oauth
        .post_form("/oauth/revoke", form(&[("token", access)]), &[])
        .await;
    assert_eq!(answer.json()["error"], "invalid_client");
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_another_clients_revocation_does_nothing() {
    let oauth = OAuth::new().await;
    let (client, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let other = oauth.public_client().await;
    let answer = oauth
        .post_form(
            "/oauth/revoke",
            form(&[("token", refresh_token), ("client_id", &other)]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = oauth
        .post_form(
            "/oauth/revoke",
            form(&[("token", access), ("client_id", &other)]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);

    let answer = oauth
        .post_form(
            "/oauth/revoke",
            form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client),
            ]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        oauth.api("/api/notes", access).await,
        StatusCode::UNAUTHORIZED
    );
    let again = refresh(&oauth, &client, refresh_token, &[]).await;
    assert_eq!(again.json()["error"], "invalid_grant");
}

/// A confidential client registered, consented to by alice: (id, secret, code, verifier).
async fn confidential(oauth: &OAuth, method: &str) -> (String, String, String, String) {
    let registered = oauth
        .register(json!({
            "client_name": "Confidential",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": method,
        }))
        .await
        .json();
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &id, "notes:read", None).await;
    (id, secret, code, verifier)
}

/// Percent-encodes every byte outside `[A-Za-z0-9]`, as `oauth4webapi` does for `-`, `_`, `.`.
fn encode_all(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn client_secret_basic_decodes_both_halves() {
    let oauth = OAuth::new().await;
    let (id, secret, code, verifier) = confidential(&oauth, "client_secret_basic").await;
    assert!(id.contains('_'));
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        // A matching client_id in the body is fine.
        ("client_id", id.as_str()),
    ];
    // A wrong secret: 401 with a Basic challenge.
    let answer = oauth.token(&exchange, Some((&id, "cs_wrong"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_client");
    assert!(
        answer.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // Both halves percent-encoded.
    let answer = oauth
        .token(&exchange, Some((&encode_all(&id), &encode_all(&secret))))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Without its secret, a confidential client is refused.
    let (_, _, code, verifier) = confidential(&oauth, "client_secret_basic").await;
    let answer = oauth
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
                ("client_id", id.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    oauth.assert_no_secret_leaked().await;
}

#[tokio::test]
async fn client_secret_post_works_and_errors_are_exact() {
    let oauth = OAuth::new().await;
    let (id, secret, code, verifier) = confidential(&oauth, "client_secret_post").await;
    let answer = oauth
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    for (pairs, status, error) in [
        (
            vec![
                ("grant_type", "password"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "c_nobody"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "ac_unknown"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "x"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ] {
        let answer = oauth.token(&pairs, None).await;
        assert_eq!(answer.status, status, "{pairs:?}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(answer.json()["error"], error, "{pairs:?}");
    }
    // A repeated parameter.
    let answer = oauth
        .post_form(
            "/oauth/token",
            "grant_type=refresh_token&grant_type=refresh_token".into(),
            &[],
        )
        .await;
    assert_eq!(answer.json()["error"], "invalid_request");
}

#[tokio::test]
async fn a_revoked_client_obtains_nothing_more() {
    let oauth = OAuth::new().await;
    let (client, tokens) = tokens(&oauth).await;
    let mut record = oauth
        .store
        .backend()
        .client(&client)
        .await
        .unwrap()
        .unwrap();
    record.revoked_at = Some(oauth.server.authority().now());
    assert!(oauth.store.backend().update_client(&record).await.unwrap());
    let answer = refresh(
        &oauth,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_client");
    let cookie = oauth.sign_in("alice").await;
    let (_, challenge) = crate::oauth_support::pkce();
    let page = oauth
        .consent_page(
            &cookie,
            &[
                ("response_type", "code"),
                ("client_id", &client),
                ("redirect_uri", REDIRECT),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
    // A use after the revocation does not bring the client back.
    oauth.clock.advance(std::time::Duration::from_secs(120));
    let _ = refresh(
        &oauth,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    let record = oauth
        .store
        .backend()
        .client(&client)
        .await
        .unwrap()
        .unwrap();
    assert!(record.revoked_at.is_some());
}

/// What was consented must still stand at every refresh: a disconnected client, a disabled
/// agent or a deactivated owner gets `invalid_grant`, not fresh tokens.
#[tokio::test]
async fn a_refresh_is_refused_once_the_grant_no_longer_stands() {
    use tower_agent_auth::principal::UserId;
    use tower_agent_auth::store::AgentStatus;

    // Disconnected: the connection's agent is disabled and its tokens revoked.
    let oauth = OAuth::new().await;
    let (client, first) = tokens(&oauth).await;
    let alice = UserId::from("alice");
    assert!(oauth.store.disconnect(&alice, &client).await.unwrap());
    let answer = refresh(
        &oauth,
        &client,
        first["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.json()["error"], "invalid_grant");
    assert_eq!(
        oauth
            .api("/api/notes", first["access_token"].as_str().unwrap())
            .await,
        StatusCode::UNAUTHORIZED
    );

    // The agent disabled and enabled again: its refresh tokens work again only while it is
    // enabled; disabled, none issues.
    let oauth = OAuth::new().await;
    let (client, first) = tokens(&oauth).await;
    let agent = oauth.store.connections(Some(&alice)).await.unwrap()[0]
        .agent
        .clone();
    oauth
        .store
        .set_agent_status(&agent, AgentStatus::Disabled)
        .await
        .unwrap();
    let answer = refresh(
        &oauth,
        &client,
        first["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(answer.json()["error"], "invalid_grant", "{}", answer.body);

    // The owner deactivated.
    let oauth = OAuth::new().await;
    let (client, first) = tokens(&oauth).await;
    assert!(oauth.users.set_active(&alice, false));
    let answer = refresh(
        &oauth,
        &client,
        first["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(answer.json()["error"], "invalid_grant", "{}", answer.body);
}

/// With the layer's verdict cache: an answer is reused only while the cache holds the token's
/// verdict, and a refusal the cache holds answers without a read of the store.
#[tokio::test]
async fn introspection_reads_and_feeds_the_layers_verdict_cache() {
    use std::time::Duration;
    use tower_agent_auth::cache::{CacheConfig, Change, VerdictCache};
    use tower_agent_auth::principal::{AgentId, TokenId};

    // The fixture's clock, read by the cache for the verdicts' expiries.
    let clock = tower_agent_auth::clock::ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(crate::oauth_support::START).unwrap(),
    );
    let cache = VerdictCache::new(CacheConfig::new().clock(clock));
    let oauth = OAuth::configured({
        let cache = cache.clone();
        move |server| {
            server
                .introspection_reuse(Duration::from_secs(60))
                .verdict_cache(cache)
        }
    })
    .await;
    let rs = oauth.introspector().await;
    let (_, tokens) = tokens(&oauth).await;
    let access = tokens["access_token"].as_str().unwrap();
    let answer = introspect(&oauth, &rs, &[("token", access)]).await;
    assert_eq!(answer["active"], true);
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 1, "what the store answered is kept");
    let agent = AgentId::from(answer["agent_id"].as_str().unwrap());
    let token = TokenId::from(answer["jti"].as_str().unwrap());

    oauth.store.revoke_token(&agent, &token).await.unwrap();
    // No change has reached the cache yet: the answer is reused (the bound's promise).
    assert_eq!(introspect(&oauth, &rs, &[("token", access)]).await, answer);
    // The change arrives (the feed's job): the reused answer ends with the verdict.
    cache.apply(&Change::Token(token));
    let inactive = json!({"active": false});
    assert_eq!(
        introspect(&oauth, &rs, &[("token", access)]).await,
        inactive
    );
    // The refusal is held: asked again, the store is not read.
    let misses = cache.status().misses;
    for _ in 0..5 {
        assert_eq!(
            introspect(&oauth, &rs, &[("token", access)]).await,
            inactive
        );
    }
    assert_eq!(cache.status().misses, misses);
    oauth.assert_no_secret_leaked().await;
}
