//! No secret in any `Debug` output: tokens, principals, records and every error type.

use crate::common::Fixture;
use http::{Request, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::error::{NotFound, StoreError};
use tower_agent_auth::store::NewToken;
use tower_agent_auth::token::{TokenError, TokenFormat};
use tower_agent_auth::{AgentAuthLayer, InvalidReason, Principal, ResolveError};

fn assert_clean(what: &str, debug: String, secret: &str) {
    // Neither the whole secret nor its random body may appear.
    let body = &secret[secret.len() - 64..];
    assert!(!debug.contains(secret), "{what} leaks the token: {debug}");
    assert!(
        !debug.contains(&body[..16]),
        "{what} leaks part of the token: {debug}"
    );
}

#[tokio::test]
async fn nothing_prints_the_secret() {
    let f = Fixture::new().await;
    let secret = f.token.expose_secret().to_owned();
    assert_clean("RawToken", format!("{:?}", f.token), &secret);
    assert_clean("TokenHash", format!("{:?}", f.token.hash()), &secret);

    let format = TokenFormat::new("acme").unwrap();
    let parsed = format.parse(&secret).unwrap();
    assert_clean("ParsedToken", format!("{parsed:?}"), &secret);

    let issued = f
        .store
        .create_token(&f.agent.id, NewToken::new("second"))
        .await
        .unwrap();
    let second = issued.token.expose_secret().to_owned();
    assert_clean("IssuedToken", format!("{issued:?}"), &second);
    assert_clean("TokenInfo", format!("{:?}", issued.info), &second);
    assert_clean("MemoryStore", format!("{:?}", f.store), &secret);

    // The principal as a handler sees it.
    let seen = crate::common::Seen::default();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()))
        .service(seen.service())
        .oneshot(
            Request::builder()
                .header("authorization", f.bearer())
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let principal: Principal = seen.principal().unwrap();
    assert_clean("Principal", format!("{principal:?}"), &secret);
    assert_clean(
        "AgentAuthLayer",
        format!("{:?}", AgentAuthLayer::new(f.store.clone())),
        &secret,
    );

    // Every error a token can produce.
    let mut typo = secret.clone();
    typo.pop();
    typo.push('x');
    for error in [
        format.parse(&typo).unwrap_err(),
        format.parse(&secret[..20]).unwrap_err(),
    ] {
        assert_clean("TokenError", format!("{error:?} {error}"), &secret);
    }
    for reason in [
        InvalidReason::Unknown,
        InvalidReason::Revoked,
        InvalidReason::Checksum,
    ] {
        let error = ResolveError::Invalid(reason);
        assert_clean("ResolveError", format!("{error:?} {error}"), &secret);
    }
    let store_errors = [
        StoreError::Token(TokenError::Checksum),
        StoreError::NotFound(NotFound::Token {
            agent: "agt_1".into(),
            token: "tok_1".into(),
        }),
    ];
    for error in store_errors {
        assert_clean("StoreError", format!("{error:?} {error}"), &secret);
    }

    // The 401 response body and headers.
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()))
        .service(seen.service())
        .oneshot(
            Request::builder()
                .header("authorization", format!("Bearer {typo}"))
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_clean("401 response", format!("{response:?}"), &secret);
}
