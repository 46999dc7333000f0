use proptest::prelude::*;

use super::*;

fn set(patterns: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(patterns).unwrap()
}

/// Every field, compared one by one (the principal has no `PartialEq`).
fn assert_same(a: &ExecutionPrincipal, b: &ExecutionPrincipal) {
    assert_eq!(a.user_id, b.user_id);
    assert_eq!(a.agent, b.agent);
    assert_eq!(a.source, b.source);
    assert_eq!(a.token_id, b.token_id);
    let layers = |p: &ExecutionPrincipal| {
        p.ceiling
            .layers()
            .map(|(s, p)| (*s, p.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(layers(a), layers(b));
    assert_eq!(a.delegation, b.delegation);
    assert_eq!(a.task_id, b.task_id);
    assert_eq!(a.task, b.task);
    assert_eq!(a.orchestrator, b.orchestrator);
    assert_eq!(a.max_operations, b.max_operations);
    assert_eq!(a.expires_at, b.expires_at);
    assert_eq!(a.audience, b.audience);
    assert_eq!(a.client_id, b.client_id);
}

fn sample() -> ExecutionPrincipal {
    let names = |n: &[&str]| Some(Arc::new(n.iter().map(|s| s.to_string()).collect()));
    let agent = AgentRef::new("agt_2", "writer")
        .with_type(AgentType::Ephemeral)
        .with_parent(Some("agt_1".into()))
        .with_scopes(names(&["workspace:42"]))
        .with_modes(names(&["draft"]));
    let ceiling = CapabilityCeiling::new(Arc::new(Policy::allow(set(&["posts:*"]))))
        .narrowed_by(
            LayerSource::AgentPolicy,
            Arc::new(Policy::unrestricted().with_deny(set(&["posts:delete"]))),
        )
        .narrowed_by(
            LayerSource::DelegatorToken,
            Arc::new(Policy::allow(set(&["posts:read"]))),
        );
    ExecutionPrincipal::agent("alice".into(), agent, "tok_2".into(), ceiling)
        .with_delegation_chain(vec![DelegationLink::new(
            AgentRef::new("agt_0", "lead").with_type(AgentType::Supervised),
            "tok_0",
        )])
        .with_task(TaskScope {
            task_id: Some("task-9".into()),
            intent: Some("tidy drafts".into()),
            orchestrator: Some("agt_0".into()),
            environment: Some("staging".into()),
            expires_on_completion: true,
            max_operations: Some(3),
            delegated_by: Some("bob".into()),
        })
        .with_orchestrator(AgentRef::new("agt_0", "lead").with_type(AgentType::Supervised))
        .with_max_operations(2)
        .with_expires_at(time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap())
        .with_audience("https://api.example.com/mcp")
        .with_client_id("c_3f9a")
}

/// The bytes version 2 writes, fixed: a change to them is a new version.
const GOLDEN: &str = concat!(
    r#"{"a":{"i":"agt_2","md":["draft"],"p":"agt_1","s":"writer","sc":["workspace:42"],"y":"ephemeral"},"#,
    r#""c":[["owner_role",["posts:*"],[]],["agent_policy",null,["posts:delete"]],["delegator_token",["posts:read"],[]]],"#,
    r#""ci":"c_3f9a","#,
    r#""d":[{"a":{"i":"agt_0","md":null,"p":null,"s":"lead","sc":null,"y":"supervised"},"t":"tok_0"}],"#,
    r#""k":{"db":"bob","en":"staging","eoc":true,"in":"tidy drafts","mo":3,"or":"agt_0","ti":"task-9"},"#,
    r#""m":2,"o":{"i":"agt_0","md":null,"p":null,"s":"lead","sc":null,"y":"supervised"},"#,
    r#""r":"https://api.example.com/mcp","#,
    r#""s":"delegated","t":"tok_2","ti":"task-9","u":"alice","v":2,"x":[1767225600,0]}"#,
);

/// The bytes version 1 wrote for the same principal, before audiences: fixed too.
const GOLDEN_V1: &str = concat!(
    r#"{"a":{"i":"agt_2","md":["draft"],"p":"agt_1","s":"writer","sc":["workspace:42"],"y":"ephemeral"},"#,
    r#""c":[["owner_role",["posts:*"],[]],["agent_policy",null,["posts:delete"]],["delegator_token",["posts:read"],[]]],"#,
    r#""d":[{"a":{"i":"agt_0","md":null,"p":null,"s":"lead","sc":null,"y":"supervised"},"t":"tok_0"}],"#,
    r#""k":{"db":"bob","en":"staging","eoc":true,"in":"tidy drafts","mo":3,"or":"agt_0","ti":"task-9"},"#,
    r#""m":2,"o":{"i":"agt_0","md":null,"p":null,"s":"lead","sc":null,"y":"supervised"},"#,
    r#""s":"delegated","t":"tok_2","ti":"task-9","u":"alice","v":1,"x":[1767225600,0]}"#,
);

#[test]
fn version_two_bytes_are_fixed() {
    assert_eq!(String::from_utf8(encode(&sample())).unwrap(), GOLDEN);
    let decoded = decode(GOLDEN.as_bytes()).expect("the golden vector decodes");
    assert_same(&decoded, &sample());
    assert!(decoded.is_supervised());
    assert!(decoded.can("posts:read"));
    assert!(!decoded.can("posts:publish"));
    assert_eq!(decoded.audience(), Some("https://api.example.com/mcp"));
    assert_eq!(decoded.client_id(), Some("c_3f9a"));
}

#[test]
fn a_version_one_entry_is_a_miss_not_a_principal_without_audience() {
    // It would decode in full as version 2: only its version makes it a miss.
    let as_v2 = GOLDEN_V1.replace(r#""v":1"#, r#""v":2"#);
    assert!(decode(as_v2.as_bytes()).is_some());
    assert!(decode(GOLDEN_V1.as_bytes()).is_none());
}

#[test]
fn a_session_principal_round_trips() {
    let session = ExecutionPrincipal::session(
        "alice".into(),
        CapabilityCeiling::new(Arc::new(Policy::nothing())),
    );
    assert_same(&decode(&encode(&session)).unwrap(), &session);
    // A session has no audience: an entry that gives it one is damaged.
    let mut value: Value = serde_json::from_slice(&encode(&session)).unwrap();
    value["r"] = json!("https://api.example.com");
    assert!(decode(&serde_json::to_vec(&value).unwrap()).is_none());
}

#[test]
fn anything_but_a_whole_version_two_encoding_is_none() {
    let golden: Value = serde_json::from_str(GOLDEN).unwrap();
    let edited = |edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut value = golden.clone();
        edit(value.as_object_mut().unwrap());
        serde_json::to_vec(&value).unwrap()
    };
    for bad in [
        b"".to_vec(),
        b"garbage".to_vec(),
        b"[]".to_vec(),
        GOLDEN.as_bytes()[..GOLDEN.len() - 1].to_vec(),
        edited(&|o| {
            o.insert("v".into(), json!(3));
        }),
        edited(&|o| {
            o.insert("v".into(), json!(1));
        }),
        edited(&|o| {
            o.remove("u");
        }),
        edited(&|o| {
            o.insert("s".into(), json!("root"));
        }),
        edited(&|o| {
            o.insert("c".into(), json!([]));
        }),
        edited(&|o| {
            o.insert("c".into(), json!([["token", null, []]]));
        }),
        edited(&|o| {
            o.insert("c".into(), json!([["owner_role", ["POSTS"], []]]));
        }),
        edited(&|o| {
            o.insert("m".into(), json!(-1));
        }),
        edited(&|o| {
            o.insert("x".into(), json!([0, 1_000_000_000]));
        }),
        edited(&|o| {
            o.remove("d");
        }),
        edited(&|o| {
            o.remove("a");
        }),
        edited(&|o| {
            o.insert("r".into(), json!(["https://a.example"]));
        }),
        edited(&|o| {
            o.insert("ci".into(), json!(7));
        }),
    ] {
        assert!(decode(&bad).is_none(), "{}", String::from_utf8_lossy(&bad));
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_]{1,12}", "\\PC{0,12}"]
}

fn names() -> impl Strategy<Value = Option<NameSet>> {
    proptest::option::of(proptest::collection::btree_set(name(), 0..4).prop_map(Arc::new))
}

fn agent() -> impl Strategy<Value = AgentRef> {
    (
        name(),
        name(),
        prop_oneof![
            Just(AgentType::Autonomous),
            Just(AgentType::Supervised),
            Just(AgentType::Ephemeral)
        ],
        proptest::option::of(name()),
        names(),
        names(),
    )
        .prop_map(|(id, slug, kind, parent, scopes, modes)| {
            AgentRef::new(id, slug)
                .with_type(kind)
                .with_parent(parent.map(AgentId::from))
                .with_scopes(scopes)
                .with_modes(modes)
        })
}

fn capabilities() -> impl Strategy<Value = CapabilitySet> {
    proptest::sample::subsequence(
        vec!["*", "posts:*", "posts:read", "a.b:c-d_e:*", "users:list"],
        0..4,
    )
    .prop_map(|patterns| set(&patterns))
}

fn policy() -> impl Strategy<Value = Policy> {
    (proptest::option::of(capabilities()), capabilities()).prop_map(|(allow, deny)| {
        allow
            .map_or_else(Policy::unrestricted, Policy::allow)
            .with_deny(deny)
    })
}

fn text() -> impl Strategy<Value = Option<Arc<str>>> {
    proptest::option::of(name().prop_map(Arc::from))
}

fn task() -> impl Strategy<Value = TaskScope> {
    (
        text(),
        text(),
        proptest::option::of(name()),
        text(),
        any::<bool>(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(name()),
    )
        .prop_map(
            |(task_id, intent, or, environment, eoc, mo, by)| TaskScope {
                task_id,
                intent,
                orchestrator: or.map(AgentId::from),
                environment,
                expires_on_completion: eoc,
                max_operations: mo,
                delegated_by: by.map(UserId::from),
            },
        )
}

prop_compose! {
    fn principal()(
        user in name(),
        agent in proptest::option::of(agent()),
        token in name(),
        owner in policy(),
        layers in proptest::collection::vec(
            (proptest::sample::select(LAYERS.map(|(s, _)| s).to_vec()), policy()), 0..5),
        chain in proptest::collection::vec((agent(), name()), 0..3),
        task_id in proptest::option::of(name()),
        task in proptest::option::of(task()),
        orchestrator in proptest::option::of(agent()),
        max in proptest::option::of(any::<u64>()),
        expires in proptest::option::of(-1_000_000_000_000_000_000i128..4_000_000_000_000_000_000i128),
        audience in proptest::option::of(name()),
        client in proptest::option::of(name()),
    ) -> ExecutionPrincipal {
        let mut ceiling = CapabilityCeiling::new(Arc::new(owner));
        for (source, policy) in layers {
            ceiling = ceiling.narrowed_by(source, Arc::new(policy));
        }
        let mut p = match agent {
            Some(agent) => ExecutionPrincipal::agent(user.into(), agent, token.into(), ceiling)
                .with_delegation_chain(
                    chain.into_iter().map(|(a, t)| DelegationLink::new(a, t)).collect(),
                ),
            None => ExecutionPrincipal::session(user.into(), ceiling),
        };
        if let Some(task) = task {
            p = p.with_task(task);
        }
        if let Some(task_id) = task_id {
            p = p.with_task_id(task_id);
        }
        if let Some(orchestrator) = orchestrator {
            p = p.with_orchestrator(orchestrator);
        }
        if let Some(max) = max {
            p = p.with_max_operations(max);
        }
        if let Some(nanos) = expires {
            p = p.with_expires_at(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap());
        }
        if let Some(audience) = audience {
            p = p.with_audience(audience);
        }
        if let Some(client) = client {
            p = p.with_client_id(client);
        }
        p
    }
}

proptest! {
    #[test]
    fn every_field_round_trips(p in principal()) {
        let decoded = decode(&encode(&p)).expect("an encoding decodes");
        assert_same(&decoded, &p);
        prop_assert_eq!(encode(&decoded), encode(&p));
    }
}
