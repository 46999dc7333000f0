//! Property tests of the ceiling algebra (DESIGN §6).

use std::sync::Arc;

use proptest::prelude::*;
use tower_agent_auth::RequireCapabilityLayer;
use tower_agent_auth::ceiling::{
    Capability, CapabilityCeiling, CapabilitySet, LayerSource, Policy, is_capability_name,
};

/// Capability names over a tiny alphabet, so that random patterns actually overlap.
fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
        .prop_map(|s| s.join(":"))
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => name(),
        3 => name().prop_map(|n| format!("{n}:*")),
        1 => Just("*".to_owned()),
    ]
}

/// Any string over the bytes that matter to matching and naming (including `:`, `*` and upper
/// case), so that edges like `a:`, `a::b` or `A` come up, not only valid names.
fn any_input() -> impl Strategy<Value = String> {
    "[abA:*. -]{0,8}"
}

fn set() -> impl Strategy<Value = CapabilitySet> {
    prop::collection::vec(pattern(), 0..4).prop_map(|p| CapabilitySet::parse(p).unwrap())
}

fn policy() -> impl Strategy<Value = Policy> {
    (prop::option::of(set()), set()).prop_map(|(allow, deny)| {
        allow
            .map_or_else(Policy::unrestricted, Policy::allow)
            .with_deny(deny)
    })
}

fn ceiling_of(layers: &[Policy]) -> CapabilityCeiling {
    let mut ceiling = CapabilityCeiling::new(Arc::new(layers[0].clone()));
    for layer in &layers[1..] {
        ceiling = ceiling.narrowed_by(LayerSource::AgentPolicy, Arc::new(layer.clone()));
    }
    ceiling
}

proptest! {
    /// `covers(p)` is what a delegated token may ask for: it must never claim a name the
    /// ceiling refuses, and a pattern is covered exactly when each layer covers it.
    #[test]
    fn a_covered_pattern_allows_every_name_it_matches(
        layers in prop::collection::vec(policy(), 1..5),
        p in pattern(),
        n in name(),
    ) {
        let ceiling = ceiling_of(&layers);
        let p = Capability::parse(&p).unwrap();
        if ceiling.covers(&p) && p.matches(&n) {
            prop_assert!(ceiling.allows(&n), "{p} covered but {n} refused");
        }
        prop_assert_eq!(ceiling.covers(&p), layers.iter().all(|layer| layer.covers(&p)));
    }

    /// Two patterns overlap exactly when some name matches both (over the small alphabet,
    /// every name up to three segments is tried).
    #[test]
    fn overlap_is_a_shared_name(a in pattern(), b in pattern()) {
        let (a, b) = (Capability::parse(&a).unwrap(), Capability::parse(&b).unwrap());
        let segments = ["a", "b", "c"];
        let mut names = Vec::new();
        for x in segments {
            names.push(x.to_owned());
            for y in segments {
                names.push(format!("{x}:{y}"));
                for z in segments {
                    names.push(format!("{x}:{y}:{z}"));
                    names.push(format!("{x}:{y}:{z}:a"));
                }
            }
        }
        let shared = names.iter().any(|n| a.matches(n) && b.matches(n));
        prop_assert_eq!(a.overlaps(&b), shared, "{} and {}", a, b);
    }

    #[test]
    fn ceiling_is_never_wider_than_any_layer(layers in prop::collection::vec(policy(), 1..5), n in name()) {
        let ceiling = ceiling_of(&layers);
        if ceiling.allows(&n) {
            for layer in &layers {
                prop_assert!(layer.allows(&n));
            }
        }
    }

    #[test]
    fn ceiling_allows_exactly_what_every_layer_allows(layers in prop::collection::vec(policy(), 1..5), n in name()) {
        let ceiling = ceiling_of(&layers);
        prop_assert_eq!(ceiling.allows(&n), layers.iter().all(|l| l.allows(&n)));
    }

    #[test]
    fn layer_order_does_not_matter(mut layers in prop::collection::vec(policy(), 1..5), n in name(), seed in any::<u64>()) {
        let before = ceiling_of(&layers).allows(&n);
        let len = layers.len();
        layers.rotate_left((seed as usize) % len);
        layers.reverse();
        prop_assert_eq!(ceiling_of(&layers).allows(&n), before);
    }

    #[test]
    fn adding_a_layer_never_widens(layers in prop::collection::vec(policy(), 1..4), extra in policy(), n in name()) {
        let before = ceiling_of(&layers);
        let after = before.clone().narrowed_by(LayerSource::Token, Arc::new(extra));
        prop_assert!(!after.allows(&n) || before.allows(&n));
    }

    #[test]
    fn deny_always_wins(layers in prop::collection::vec(policy(), 1..4), n in name()) {
        let deny = Policy::unrestricted().with_deny(CapabilitySet::parse([n.as_str()]).unwrap());
        let ceiling = ceiling_of(&layers).narrowed_by(LayerSource::Token, Arc::new(deny));
        prop_assert!(!ceiling.allows(&n));
    }

    #[test]
    fn covers_agrees_with_matches(s in set(), p in pattern(), n in name()) {
        let pattern = Capability::parse(&p).unwrap();
        if s.covers(&pattern) && pattern.matches(&n) {
            prop_assert!(s.matches(&n));
        }
    }

    #[test]
    fn patterns_are_never_allowed_as_names(layers in prop::collection::vec(policy(), 1..3), n in name()) {
        let ceiling = ceiling_of(&layers);
        let wildcard = format!("{n}:*");
        prop_assert!(!ceiling.allows(&wildcard));
        prop_assert!(!ceiling.allows("*"));
    }

    #[test]
    fn a_pattern_and_its_one_element_set_agree(p in pattern(), input in prop_oneof![name(), any_input()]) {
        let single = Capability::parse(&p).unwrap();
        let set: CapabilitySet = [single.clone()].into_iter().collect();
        prop_assert_eq!(single.matches(&input), set.matches(&input));
    }

    #[test]
    fn the_name_rule_is_the_one_require_layer_uses(input in prop_oneof![name(), pattern(), any_input()]) {
        // `capability!` checks `is_capability_name` at compile time; it must refuse exactly what
        // `RequireCapabilityLayer::try_new` refuses at run time.
        prop_assert_eq!(is_capability_name(&input), RequireCapabilityLayer::try_new(&input).is_ok());
    }

    #[test]
    fn the_name_rule_is_segments_of_the_allowed_bytes(input in prop_oneof![name(), any_input(), "[a-z0-9_.:-]{120,130}"]) {
        // The specification, written the obvious way, against the `const fn` loop.
        let spec = !input.is_empty()
            && input.len() <= 128
            && input.split(':').all(|segment| {
                !segment.is_empty()
                    && segment.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
                    })
            });
        prop_assert_eq!(is_capability_name(&input), spec);
    }
}
