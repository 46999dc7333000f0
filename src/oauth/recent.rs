//! Introspection answers and introspecting clients reused for a short while
//! ([`AuthorizationServer::introspection_reuse`](super::AuthorizationServer::introspection_reuse)):
//! a resource server introspects the same token at each of its requests, and every answer
//! otherwise costs three reads of the store.
//!
//! An answer is reused at most for the configured time and never past the token's expiry, so a
//! revocation, a disabled agent or a revoked client is seen within that bound — the bound the
//! verdict cache gives the layer. Answers of use-limited tokens (their remaining uses move) and
//! inactive answers are never kept.

use std::time::Duration;

use moka::sync::Cache;
use serde_json::Value;

use super::client::Client;
use crate::token::TokenHash;

/// The entries kept: a bound on memory, not on correctness (an evicted entry is read again).
const CAPACITY: u64 = 100_000;

pub(crate) struct Recent {
    answers: Cache<TokenHash, Value>,
    callers: Cache<(String, TokenHash), Client>,
}

impl Recent {
    pub(crate) fn new(keep_for: Duration) -> Self {
        Self {
            answers: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(keep_for)
                .build(),
            callers: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(keep_for)
                .build(),
        }
    }

    /// The client that authenticated with this id and the secret of this hash, recently.
    pub(crate) fn caller(&self, id: &str, secret: &TokenHash) -> Option<Client> {
        self.callers.get(&(id.to_owned(), *secret))
    }

    pub(crate) fn keep_caller(&self, secret: TokenHash, client: Client) {
        self.callers.insert((client.id.clone(), secret), client);
    }

    /// The active answer for the token of this hash, if one was kept and `now` is before its
    /// `exp` (a unix time).
    pub(crate) fn answer(&self, token: &TokenHash, now: i64) -> Option<Value> {
        self.answers.get(token).filter(|answer| {
            answer
                .get("exp")
                .and_then(Value::as_i64)
                .is_none_or(|exp| now < exp)
        })
    }

    /// Keeps an active answer, unless its token is use-limited.
    pub(crate) fn keep_answer(&self, token: TokenHash, answer: &Value) {
        if answer.get("active") == Some(&Value::Bool(true))
            && answer.get("max_operations").is_none()
            && answer.get("operations_remaining").is_none()
        {
            self.answers.insert(token, answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_active_unlimited_answers_are_kept_and_never_past_their_expiry() {
        let recent = Recent::new(Duration::from_secs(60));
        let (a, b, c, d) = (
            TokenHash::of("a"),
            TokenHash::of("b"),
            TokenHash::of("c"),
            TokenHash::of("d"),
        );
        recent.keep_answer(a, &json!({"active": true, "exp": 1_000}));
        recent.keep_answer(b, &json!({"active": false}));
        recent.keep_answer(c, &json!({"active": true, "max_operations": 5}));
        recent.keep_answer(d, &json!({"active": true}));
        assert!(recent.answer(&a, 999).is_some());
        assert!(recent.answer(&a, 1_000).is_none(), "expired");
        assert!(
            recent.answer(&b, 0).is_none(),
            "inactive answers are read anew"
        );
        assert!(
            recent.answer(&c, 0).is_none(),
            "a use-limited token's uses move"
        );
        assert!(recent.answer(&d, i64::MAX).is_some(), "no expiry");
    }

    #[test]
    fn answers_and_callers_go_after_the_time_given() {
        let recent = Recent::new(Duration::from_millis(50));
        let token = TokenHash::of("t");
        recent.keep_answer(token, &json!({"active": true}));
        let secret = TokenHash::of("cs_secret");
        let client = Client::new(
            "c_1",
            super::super::client::ClientKind::Registered,
            "rs",
            time::OffsetDateTime::UNIX_EPOCH,
        );
        recent.keep_caller(secret, client);
        assert!(recent.answer(&token, 0).is_some());
        assert!(recent.caller("c_1", &secret).is_some());
        assert!(
            recent.caller("c_1", &TokenHash::of("another")).is_none(),
            "another secret"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert!(recent.answer(&token, 0).is_none());
        assert!(recent.caller("c_1", &secret).is_none());
    }
}
