//! Scopes are capabilities: a `scope` is a space-separated list of capability patterns, and what
//! is granted is what was asked ∩ every layer that bounds it (the owner's role, the agent's
//! policy).

use crate::ceiling::{Capability, CapabilityError, CapabilitySet, Policy};

/// The most patterns one `scope` may hold.
pub(crate) const MAX_PATTERNS: usize = 64;

/// Parses a `scope` parameter: patterns separated by spaces (RFC 6749 §3.3). Empty → `None`.
pub(crate) fn parse(scope: &str) -> Result<Option<CapabilitySet>, ScopeError> {
    let mut set = CapabilitySet::empty();
    let mut count = 0;
    for pattern in scope.split(' ').filter(|p| !p.is_empty()) {
        count += 1;
        if count > MAX_PATTERNS {
            return Err(ScopeError::TooMany);
        }
        set.insert(Capability::parse(pattern).map_err(ScopeError::Invalid)?);
    }
    Ok((!set.is_empty()).then_some(set))
}

/// Why a `scope` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScopeError {
    /// A pattern that is no capability pattern.
    #[error("scope: {0}")]
    Invalid(CapabilityError),
    /// More than [`MAX_PATTERNS`].
    #[error("scope: more than {MAX_PATTERNS} patterns")]
    TooMany,
}

/// The set as a `scope` parameter.
pub(crate) fn to_scope(set: &CapabilitySet) -> String {
    set.to_strings().join(" ")
}

/// What of `requested` the layer `policy` lets through, as patterns: a requested pattern its
/// allow list covers stays; one wider than some allowed patterns gives way to those (`posts:*`
/// asked, `posts:read` allowed → `posts:read`); patterns it denies whole go. Capability
/// patterns form a tree, so two patterns that meet always have one inside the other, and this
/// is the exact intersection up to the deny list (which the ceiling applies at every request).
pub(crate) fn within(requested: &CapabilitySet, policy: &Policy) -> CapabilitySet {
    let mut kept = CapabilitySet::empty();
    for pattern in requested.iter() {
        match policy.allowed() {
            None => kept.insert(pattern.clone()),
            Some(allow) if allow.covers(&pattern) => kept.insert(pattern.clone()),
            Some(allow) => {
                let asked: CapabilitySet = std::iter::once(pattern.clone()).collect();
                for narrower in allow.iter().filter(|a| asked.covers(a)) {
                    kept.insert(narrower);
                }
            }
        }
    }
    kept.iter()
        .filter(|pattern| !policy.denied().covers(pattern))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> CapabilitySet {
        CapabilitySet::parse(patterns).unwrap()
    }

    #[test]
    fn scopes_parse_as_patterns() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(
            parse("posts:read  posts:*").unwrap(),
            Some(set(&["posts:read", "posts:*"]))
        );
        assert!(matches!(parse("Posts:Read"), Err(ScopeError::Invalid(_))));
        let many = vec!["a"; MAX_PATTERNS + 1].join(" ");
        assert_eq!(parse(&many), Err(ScopeError::TooMany));
    }

    #[test]
    fn what_is_granted_is_the_intersection() {
        let role = Policy::allow(set(&["posts:read", "posts:drafts:*", "comments:read"]))
            .with_deny(set(&["comments:read"]));
        let granted = within(&set(&["posts:*", "comments:read", "users:list"]), &role);
        assert_eq!(granted, set(&["posts:read", "posts:drafts:*"]));
        // A narrower request stays as asked.
        let granted = within(&set(&["posts:drafts:edit"]), &role);
        assert_eq!(granted, set(&["posts:drafts:edit"]));
        // An unrestricted layer keeps everything.
        let asked = set(&["*"]);
        assert_eq!(within(&asked, &Policy::unrestricted()), asked);
        assert!(within(&set(&["x:y"]), &Policy::nothing()).is_empty());
    }
}
