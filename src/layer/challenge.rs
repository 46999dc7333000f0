//! The `WWW-Authenticate` challenges a layer answers with (RFC 6750, RFC 9728), built once when
//! the layer is configured.

use std::sync::Arc;

use http::HeaderValue;

/// Why a challenge setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The realm must be visible ASCII without `"` or `\`.
    #[error("realm must be visible ASCII without '\"' or '\\'")]
    InvalidRealm,
    /// The resource metadata URL must be an absolute http(s) URL of visible ASCII without `"`.
    #[error("resource metadata must be an absolute http(s) URL without '\"' or '\\'")]
    InvalidResourceMetadata,
    /// The scope is not a space-separated list of RFC 6749 scope tokens.
    #[error(
        "scope must be scope tokens (visible ASCII without '\"' or '\\') separated by single spaces"
    )]
    InvalidScope,
}

/// The realm of a layer that was not given one.
pub(crate) const DEFAULT_REALM: &str = "api";

fn quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// The `WWW-Authenticate` values a layer answers with, built once at configuration time.
/// RFC 6749 §3.3: scope tokens of `%x21 / %x23-5B / %x5D-7E`, one space between them.
fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    params: Box<str>,
    pub(super) missing: HeaderValue,
    pub(super) invalid_request: HeaderValue,
    pub(super) invalid_token: HeaderValue,
}

impl Challenge {
    pub(crate) fn new(
        realm: &str,
        resource_metadata: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Self, ChallengeError> {
        if !quotable(realm) {
            return Err(ChallengeError::InvalidRealm);
        }
        let mut params = format!("realm=\"{realm}\"");
        if let Some(url) = resource_metadata {
            let absolute = url.starts_with("https://") || url.starts_with("http://");
            if !absolute || !quotable(url) || url.contains(' ') {
                return Err(ChallengeError::InvalidResourceMetadata);
            }
            params.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        // The scope a client should ask for: on the 401s only (a 403 names what is missing).
        let mut unauthorized = params.clone();
        if let Some(scope) = scope {
            if !valid_scope(scope) {
                return Err(ChallengeError::InvalidScope);
            }
            unauthorized.push_str(&format!(", scope=\"{scope}\""));
        }
        let value = |params: &str, extra: &str| {
            HeaderValue::try_from(format!("Bearer {params}{extra}"))
                .expect("checked: visible ASCII only")
        };
        Ok(Self {
            missing: value(&unauthorized, ""),
            invalid_request: value(&params, ", error=\"invalid_request\""),
            invalid_token: value(&unauthorized, ", error=\"invalid_token\""),
            params: params.into_boxed_str(),
        })
    }

    /// The challenge of a layer configured with neither realm nor resource metadata, built
    /// once. Extractors use it for a request that carries a principal and no [`LayerMarker`]:
    /// the layer marks admitted requests only when its challenge is another.
    pub(crate) fn default_shared() -> &'static Arc<Challenge> {
        static DEFAULT: std::sync::OnceLock<Arc<Challenge>> = std::sync::OnceLock::new();
        DEFAULT.get_or_init(|| {
            Arc::new(Challenge::new(DEFAULT_REALM, None, None).expect("the default realm is valid"))
        })
    }

    pub(super) fn insufficient_scope(&self, scope: &str) -> HeaderValue {
        HeaderValue::try_from(format!(
            "Bearer {}, error=\"insufficient_scope\", scope=\"{scope}\"",
            self.params
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"insufficient_scope\""))
    }
}

/// Marks a request as having passed through `AgentAuthLayer`, carrying its challenge so that
/// extractors and `RequireCapabilityLayer` can answer 401/403 consistently, and tell "no
/// principal" (401) apart from "the layer is not installed" (500). `foreign_bearer` says the
/// request carried a bearer token of another prefix that the layer let through, so that a 401
/// says the token is not ours rather than that one is required.
#[derive(Debug, Clone)]
pub(crate) struct LayerMarker {
    pub(crate) challenge: Arc<Challenge>,
    pub(crate) foreign_bearer: bool,
}

impl LayerMarker {
    pub(crate) fn new(challenge: Arc<Challenge>) -> Self {
        Self {
            challenge,
            foreign_bearer: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_must_be_quotable() {
        assert_eq!(
            Challenge::new("a\"b", None, None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
        assert_eq!(
            Challenge::new("a\\b", None, None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
        assert_eq!(
            Challenge::new("a\nb", None, None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
    }

    #[test]
    fn resource_metadata_must_be_an_absolute_url() {
        for bad in ["/relative", "ftp://x", "https://a\"b", "https://a b"] {
            assert_eq!(
                Challenge::new("api", Some(bad), None).unwrap_err(),
                ChallengeError::InvalidResourceMetadata,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn challenges_carry_realm_and_resource_metadata() {
        let c = Challenge::new(
            "api",
            Some("https://api.example/.well-known/oauth-protected-resource"),
            None,
        )
        .unwrap();
        assert_eq!(
            c.invalid_token,
            "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\", error=\"invalid_token\""
        );
        assert_eq!(
            c.insufficient_scope("posts:publish"),
            "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\", error=\"insufficient_scope\", scope=\"posts:publish\""
        );
    }

    /// A scope rides on the 401s — what a client should ask for — and not on the 403, whose
    /// scope is what is missing: a header never names `scope` twice.
    #[test]
    fn the_scope_goes_on_401s_only() {
        let c = Challenge::new("api", None, Some("mcp:connect posts:read")).unwrap();
        assert_eq!(
            c.missing,
            "Bearer realm=\"api\", scope=\"mcp:connect posts:read\""
        );
        assert_eq!(
            c.invalid_token,
            "Bearer realm=\"api\", scope=\"mcp:connect posts:read\", error=\"invalid_token\""
        );
        assert_eq!(
            c.invalid_request,
            "Bearer realm=\"api\", error=\"invalid_request\""
        );
        assert_eq!(
            c.insufficient_scope("posts:publish"),
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"posts:publish\""
        );
    }

    #[test]
    fn a_scope_must_be_scope_tokens() {
        for bad in [
            "",
            " a",
            "a  b",
            "a b ",
            "a\"b",
            "a\\b",
            "caf\u{e9}",
            "a\tb",
        ] {
            assert_eq!(
                Challenge::new("api", None, Some(bad)).unwrap_err(),
                ChallengeError::InvalidScope,
                "{bad:?}"
            );
        }
        assert!(Challenge::new("api", None, Some("mcp:tools:get-weather a.b/c")).is_ok());
    }
}
