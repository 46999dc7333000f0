use super::*;

#[test]
fn every_reason_round_trips_through_its_name() {
    for reason in InvalidReason::ALL {
        assert_eq!(InvalidReason::parse(reason.as_str()), Some(reason));
        assert_eq!(reason.to_string(), reason.as_str());
    }
    assert_eq!(InvalidReason::parse("nope"), None);
}

#[test]
fn refusals_answer_401_outages_503_bad_data_500() {
    let refused = RefusedCredential::new(
        InvalidReason::Revoked,
        UserId::from("alice"),
        AgentId::from("agt_1"),
        TokenId::from("tok_1"),
    );
    let refused = ResolveError::from(refused);
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), Some(InvalidReason::Revoked));
    let invalid = ResolveError::from(InvalidReason::Checksum);
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(invalid.reason(), Some(InvalidReason::Checksum));
    let down = ResolveError::unavailable("timeout");
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.reason(), None);
    let corrupt = ResolveError::corrupt("bad policy");
    assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(corrupt.reason(), None);
}

#[test]
fn area_errors_keep_their_messages_when_wrapped() {
    let errors: [(StoreError, &str); 4] = [
        (
            NotFound::Token {
                agent: "writer".into(),
                token: "tok_1".into(),
            }
            .into(),
            "agent \"writer\" has no token \"tok_1\"",
        ),
        (
            Conflict::Slug("writer".into()).into(),
            "an agent with slug \"writer\" already exists",
        ),
        (
            InputError::InvalidLabel.into(),
            "invalid label: at most 200 bytes, no control, invisible or bidirectional-override characters",
        ),
        (
            TokenError::Entropy.into(),
            "the operating system's random number generator failed",
        ),
    ];
    for (error, message) in errors {
        assert_eq!(error.to_string(), message);
    }
}
