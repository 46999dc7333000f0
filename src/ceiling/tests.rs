use super::capability::MAX_CAPABILITY_LEN;
use super::*;

fn set(patterns: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(patterns).unwrap()
}

#[test]
fn wildcard_matches_strictly_below_at_segment_boundaries() {
    let s = set(&["posts:*"]);
    assert!(s.matches("posts:publish"));
    assert!(s.matches("posts:drafts:edit"));
    assert!(!s.matches("posts"));
    assert!(!s.matches("postsx:publish"));
    assert!(!s.matches("comments:read"));
}

#[test]
fn invalid_patterns_are_refused() {
    for bad in [
        "",
        ":",
        "posts:",
        "Posts:read",
        "posts:*:x",
        "posts*",
        "a b",
        "**",
    ] {
        assert!(Capability::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn patterns_round_trip_through_display() {
    for p in ["*", "posts:*", "posts:publish", "manage_options"] {
        assert_eq!(Capability::parse(p).unwrap().to_string(), p);
    }
}

#[test]
fn covers_is_pattern_inclusion() {
    let s = set(&["posts:*", "users:list"]);
    assert!(s.covers(&Capability::parse("posts:publish").unwrap()));
    assert!(s.covers(&Capability::parse("posts:*").unwrap()));
    assert!(s.covers(&Capability::parse("posts:drafts:*").unwrap()));
    assert!(!s.covers(&Capability::parse("users:*").unwrap()));
    assert!(!s.covers(&Capability::parse("*").unwrap()));
    assert!(set(&["*"]).covers(&Capability::All));
}

#[test]
fn deny_wins_over_allow_in_the_same_layer() {
    let p = Policy::allow(set(&["posts:*"])).with_deny(set(&["posts:delete"]));
    assert!(p.allows("posts:publish"));
    assert!(!p.allows("posts:delete"));
}

#[test]
fn patterns_are_never_allowed_as_names() {
    let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()));
    assert!(ceiling.allows("posts:read"));
    assert!(!ceiling.allows("posts:*"));
    assert!(!ceiling.allows("*"));
}

#[test]
fn a_single_exact_pattern_matches_only_its_name() {
    let c = Capability::parse("posts:read").unwrap();
    assert!(c.matches("posts:read"));
    assert!(!c.matches("posts:write"));
    assert!(!c.matches("posts:read:x"));
}

#[test]
fn a_single_wildcard_pattern_matches_strictly_below() {
    let c = Capability::parse("posts:*").unwrap();
    assert!(c.matches("posts:read"));
    assert!(c.matches("posts:drafts:edit"));
    assert!(!c.matches("posts"));
    assert!(!c.matches("postsx:read"));
}

#[test]
fn a_trailing_colon_is_not_below_its_prefix() {
    // `posts:` is not a name; neither a pattern nor a set may read it as `posts:<something>`.
    assert!(!Capability::parse("posts:*").unwrap().matches("posts:"));
    assert!(!set(&["posts:*"]).matches("posts:"));
}

#[test]
fn star_matches_every_name() {
    assert!(Capability::All.matches("anything:at:all"));
}

#[test]
fn empty_set_is_empty() {
    assert!(CapabilitySet::empty().is_empty());
    assert!(CapabilitySet::parse(Vec::<&str>::new()).unwrap().is_empty());
}

#[test]
fn a_set_with_only_star_is_not_empty() {
    assert!(!CapabilitySet::everything().is_empty());
}

#[test]
fn a_set_with_only_an_exact_name_is_not_empty() {
    assert!(!set(&["posts:read"]).is_empty());
}

#[test]
fn a_set_with_only_a_wildcard_is_not_empty() {
    assert!(!set(&["posts:*"]).is_empty());
}

#[test]
fn to_strings_lists_star_then_wildcards_then_names() {
    let s = set(&["users:list", "*", "posts:*"]);
    assert_eq!(s.to_strings(), ["*", "posts:*", "users:list"]);
    assert!(CapabilitySet::empty().to_strings().is_empty());
}

#[test]
fn covers_all_holds_when_every_pattern_is_covered() {
    let s = set(&["posts:*", "users:list"]);
    assert!(s.covers_all(&set(&["posts:read", "posts:drafts:*", "users:list"])));
    assert!(s.covers_all(&CapabilitySet::empty()));
}

#[test]
fn covers_all_fails_when_one_pattern_is_not_covered() {
    let s = set(&["posts:*", "users:list"]);
    assert!(!s.covers_all(&set(&["posts:read", "users:delete"])));
}

#[test]
fn unrestricted_policy_allows_every_name_and_covers_everything() {
    let p = Policy::unrestricted();
    assert_eq!(p.allowed(), None);
    assert!(p.denied().is_empty());
    assert!(p.allows("posts:read"));
    assert!(p.covers_all(&CapabilitySet::everything()));
}

#[test]
fn nothing_policy_allows_no_name_and_covers_only_the_empty_set() {
    let p = Policy::nothing();
    assert!(!p.allows("posts:read"));
    assert!(p.covers_all(&CapabilitySet::empty()));
    assert!(!p.covers_all(&set(&["posts:read"])));
}

#[test]
fn policy_covers_all_uses_its_allow_list() {
    let p = Policy::allow(set(&["posts:*"]));
    assert!(p.covers_all(&set(&["posts:read"])));
    assert!(!p.covers_all(&set(&["users:list"])));
}

#[test]
fn capability_names_are_segments_of_the_allowed_bytes() {
    for good in [
        "a",
        "posts:read",
        "a-b.c_d:0",
        &"a".repeat(MAX_CAPABILITY_LEN),
    ] {
        assert!(is_capability_name(good), "{good:?}");
    }
}

#[test]
fn patterns_empty_segments_and_other_bytes_are_not_names() {
    for bad in [
        "",
        "*",
        "posts:*",
        "Posts:Read",
        ":a",
        "a:",
        "a::b",
        "a b",
        "é",
        &"a".repeat(MAX_CAPABILITY_LEN + 1),
    ] {
        assert!(!is_capability_name(bad), "{bad:?}");
    }
}

#[test]
fn policy_reports_its_allow_and_deny_lists() {
    let p = Policy::allow(set(&["posts:*"])).with_deny(set(&["posts:delete"]));
    assert_eq!(p.allowed(), Some(&set(&["posts:*"])));
    assert_eq!(p.denied(), &set(&["posts:delete"]));
}

#[test]
fn refused_by_names_the_first_layer_that_refuses() {
    // The owner allows it, the token does not: the token is the one to blame.
    let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()))
        .narrowed_by(LayerSource::Token, Arc::new(Policy::nothing()));
    assert_eq!(ceiling.refused_by("posts:read"), Some(&LayerSource::Token));
}

#[test]
fn refused_by_is_none_when_every_layer_allows() {
    let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()));
    assert_eq!(ceiling.refused_by("posts:read"), None);
}
