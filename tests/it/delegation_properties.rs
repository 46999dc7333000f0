//! Property tests of delegation (memory store): at any depth and with any layers, a descendant
//! is never wider than any ancestor, and expiry and use limits never extend down a chain.
#![cfg(feature = "testing")]

use std::time::Duration;

use proptest::prelude::*;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::delegation::Delegation;
use tower_agent_auth::error::{InputError, StoreError};
use tower_agent_auth::store::{IssuedToken, MemoryStore, NewAgent, NewToken, UserRecord};
use tower_agent_auth::{Principal, testing};

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

fn set() -> impl Strategy<Value = CapabilitySet> {
    prop::collection::vec(pattern(), 1..4).prop_map(|p| CapabilitySet::parse(p).unwrap())
}

fn policy() -> impl Strategy<Value = Policy> {
    (prop::option::of(set()), prop::option::of(set())).prop_map(|(allow, deny)| {
        let policy = allow.map_or_else(Policy::unrestricted, Policy::allow);
        match deny {
            Some(deny) => policy.with_deny(deny),
            None => policy,
        }
    })
}

/// One link of a chain: its agent's policy and what its token asks for.
#[derive(Debug, Clone)]
struct Link {
    policy: Policy,
    capabilities: Option<CapabilitySet>,
    expires_in_minutes: Option<u64>,
    max_operations: Option<u64>,
}

fn link() -> impl Strategy<Value = Link> {
    (
        policy(),
        prop::option::of(set()),
        prop::option::of(1u64..180),
        prop::option::of(1u64..6),
    )
        .prop_map(
            |(policy, capabilities, expires_in_minutes, max_operations)| Link {
                policy,
                capabilities,
                expires_in_minutes,
                max_operations,
            },
        )
}

fn store() -> MemoryStore {
    let users = testing::users();
    users.insert(UserRecord::new("dora", Policy::unrestricted()));
    MemoryStore::with_config(testing::config(&users, &testing::clock()))
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A chain as far as its links are issued: the principals of every token, root first, and
/// the tokens; the delegation that was refused, if one was, with its parent's principal.
struct Built {
    principals: Vec<Principal>,
    tokens: Vec<IssuedToken>,
    refused: Option<(Link, Principal, StoreError)>,
}

async fn build(store: &MemoryStore, links: &[Link]) -> Option<Built> {
    let mut agents = Vec::new();
    for (i, link) in links.iter().enumerate() {
        let agent = store
            .create_agent(
                NewAgent::new(format!("agent-{i}"), "dora").with_policy(link.policy.clone()),
            )
            .await
            .unwrap();
        agents.push(agent);
    }
    let root = &links[0];
    let mut new = NewToken::new("root");
    if let Some(caps) = &root.capabilities {
        new = new.with_capabilities(caps.clone());
    }
    if let Some(minutes) = root.expires_in_minutes {
        new = new.expires_in(Duration::from_secs(minutes * 60));
    }
    if let Some(n) = root.max_operations {
        new = new.max_operations(n);
    }
    // A root asking for more than its own agent's policy is not a delegation case.
    let root_token = store.create_token(&agents[0].id, new).await.ok()?;
    let mut principals = vec![inspect(store, &root_token).await];
    let mut tokens = vec![root_token];
    for (i, link) in links.iter().enumerate().skip(1) {
        let mut request = Delegation::to(agents[i].id.clone(), format!("link-{i}"));
        if let Some(caps) = &link.capabilities {
            request = request.with_capabilities(caps.clone());
        }
        if let Some(minutes) = link.expires_in_minutes {
            request = request.expires_in(Duration::from_secs(minutes * 60));
        }
        if let Some(n) = link.max_operations {
            request = request.max_operations(n);
        }
        let parent = tokens.last().unwrap().token.expose_secret().to_owned();
        match store.delegate(&parent, request).await {
            Ok(child) => {
                principals.push(inspect(store, &child).await);
                tokens.push(child);
            }
            Err(error) => {
                let parent = principals.last().unwrap().clone();
                return Some(Built {
                    principals,
                    tokens,
                    refused: Some((link.clone(), parent, error)),
                });
            }
        }
    }
    Some(Built {
        principals,
        tokens,
        refused: None,
    })
}

/// The principal of `token` now, spending nothing.
async fn inspect(store: &MemoryStore, token: &IssuedToken) -> Principal {
    let format = store.config().format().clone();
    let parsed = format.parse(token.token.expose_secret()).unwrap();
    let lookup = tower_agent_auth::TokenLookup::new(parsed.hash(), parsed.slug(), false);
    store.inspect_token(&lookup).await.unwrap().principal
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every issued descendant's `can(c)` implies every ancestor's; a delegation asking for a
    /// pattern its parent does not wholly allow is refused.
    #[test]
    fn a_descendant_is_never_wider_than_any_ancestor(
        // Capabilities only: expiry and uses are the other property's.
        links in prop::collection::vec(link(), 2..=5).prop_map(|links| {
            links
                .into_iter()
                .map(|l| Link { expires_in_minutes: None, max_operations: None, ..l })
                .collect::<Vec<_>>()
        }),
        names in prop::collection::vec(name(), 1..12),
    ) {
        let store = store();
        let built = run(build(&store, &links));
        // A root asking for more than its own agent allows is not a delegation case.
        prop_assume!(built.is_some());
        let built = built.unwrap();
        for (depth, principal) in built.principals.iter().enumerate() {
            prop_assert_eq!(principal.delegation_depth(), depth);
            for n in &names {
                if principal.can(n) {
                    for ancestor in &built.principals[..depth] {
                        prop_assert!(ancestor.can(n), "{n} allowed at depth {depth} only");
                    }
                }
            }
        }
        for (link, principal) in links.iter().zip(&built.principals).skip(1) {
            if let Some(caps) = &link.capabilities {
                // Issued, so every pattern it asked for lay within its parent.
                let parent = &built.principals[principal.delegation_depth() - 1];
                prop_assert!(parent.ceiling().outside(caps).is_empty());
            }
        }
        if let Some((link, parent, error)) = &built.refused {
            if let Some(caps) = &link.capabilities {
                let wider = !parent.ceiling().outside(caps).is_empty();
                let outside_target = matches!(error, StoreError::Input(InputError::CapabilitiesOutsidePolicy(_)));
                prop_assert!(wider || outside_target, "refused without cause: {error}");
            } else {
                prop_assert!(false, "a delegation asking for nothing was refused: {error}");
            }
        }
    }

    /// No descendant outlives an ancestor or gets more uses than the fewest left up its chain;
    /// requests through the leaf never exceed the least limit of the chain.
    #[test]
    fn expiry_and_uses_never_extend_down_a_chain(
        links in prop::collection::vec(link(), 2..=5)
            .prop_map(|links| links.into_iter().map(|l| Link { policy: Policy::unrestricted(), capabilities: None, ..l }).collect::<Vec<_>>()),
    ) {
        let store = store();
        let built = run(build(&store, &links));
        // A root asking for more than its own agent allows is not a delegation case.
        prop_assume!(built.is_some());
        let built = built.unwrap();
        let tokens = &built.tokens;
        for (depth, token) in tokens.iter().enumerate() {
            for ancestor in &tokens[..depth] {
                if let Some(limit) = ancestor.info.expires_at {
                    prop_assert!(token.info.expires_at.is_some_and(|at| at <= limit));
                }
            }
            if let (Some(own), Some(least)) = (
                token.info.max_operations,
                tokens[..depth].iter().filter_map(|t| t.info.max_operations).min(),
            ) {
                prop_assert!(own <= least);
            }
        }
        if let Some((_, _, error)) = &built.refused {
            let justified = matches!(
                error,
                StoreError::Delegation(
                    tower_agent_auth::delegation::DelegationError::ExpiryExceedsParent { .. }
                        | tower_agent_auth::delegation::DelegationError::UsesExceedParent { .. }
                )
            );
            prop_assert!(justified, "refused without cause: {error}");
        }
        let least = tokens.iter().filter_map(|t| t.info.max_operations).min();
        let leaf = tokens.last().unwrap().token.expose_secret().to_owned();
        let admitted = run(async {
            let mut admitted = 0u64;
            for _ in 0..8 {
                if testing::resolve(&store, &leaf).await.is_ok() {
                    admitted += 1;
                }
            }
            admitted
        });
        match least {
            Some(least) => prop_assert_eq!(admitted, least.min(8)),
            None => prop_assert_eq!(admitted, 8),
        }
    }
}
