//! Approvals: what is kept, decided once, spent exactly as often as approved, and expired.
//!
//! Long by design: one section of the conformance suite, a flat list of independent cases
//! that a store author reads top to bottom when one fails; splitting it would only scatter
//! them.

use std::time::Duration;

use serde_json::json;

use super::Env;
use crate::approval::{
    ApprovalBounds, ApprovalFilter, ApprovalStatus, CriticalAction, Decision, NewApproval,
};
use crate::error::{Conflict, InputError, NotFound, StoreError};
use crate::store::{AgentType, Backend, NewAgent, NewToken};

const LIFETIME: Duration = Duration::from_secs(600);

/// A supervised agent `slug` of alice's, and a new approval of a payment of `amount` by its
/// token, not yet stored.
async fn asked<B: Backend>(env: &Env<B>, slug: &str, amount: u32) -> NewApproval {
    let agent = env
        .store
        .create_agent(NewAgent::new(slug, "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let token = env.token(&agent.id, NewToken::new("t")).await;
    let principal = env.resolve(&token).await.unwrap();
    assert!(principal.is_supervised());
    payment(&principal, amount)
}

fn payment(principal: &crate::ExecutionPrincipal, amount: u32) -> NewApproval {
    let action = CriticalAction::new("payments:send", &http::Method::POST, "/payments")
        .details(
            json!({"type": "payment", "amount": amount, "currency": "EUR",
                        "to": {"name": "ACME", "iban": "DE00"}}),
        )
        .message(format!("Pay {amount} EUR to ACME"));
    NewApproval::new(principal, &action, LIFETIME).unwrap()
}

pub async fn case_approvals_round_trip_with_their_details<B: Backend>(env: Env<B>) {
    let new = asked(&env, "payer", 50).await;
    let created = env.store.create_approval(new.clone()).await.unwrap();
    assert!(created.id.as_str().starts_with("apr_"), "{:?}", created.id);
    assert_eq!(created.status, ApprovalStatus::Pending);
    assert_eq!(created.created_at, env.now_micros());
    assert_eq!(created.expires_at, env.now_micros() + LIFETIME);
    assert_eq!(created.binding_message, "Pay 50 EUR to ACME");
    assert_eq!(created.details.as_ref().unwrap()["to"]["name"], "ACME");
    assert_eq!(created.binding, new.binding);
    assert_eq!(
        (
            created.uses,
            created.uses_remaining,
            created.decided_by.clone()
        ),
        (None, None, None)
    );
    let read = env.store.approval(&created.id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&created), "read back as created");
    assert_eq!(
        env.store.approval(&"apr_missing".into()).await.unwrap(),
        None
    );

    env.clock.advance(Duration::from_secs(1));
    let other = env
        .store
        .create_approval(asked(&env, "other", 7).await)
        .await
        .unwrap();
    let ids =
        |list: Vec<crate::approval::Approval>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let all = env
        .store
        .list_approvals(&ApprovalFilter::all())
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        [other.id.clone(), created.id.clone()],
        "newest first"
    );
    assert_eq!(
        ids(env
            .store
            .list_approvals(&ApprovalFilter::all().last(1))
            .await
            .unwrap()),
        std::slice::from_ref(&other.id),
        "the newest one"
    );
    let of_agents = ApprovalFilter::all().agents([created.agent_id.clone()]);
    assert_eq!(
        ids(env.store.list_approvals(&of_agents).await.unwrap()),
        std::slice::from_ref(&created.id)
    );
    let of_none = ApprovalFilter::all().agents([]);
    assert!(env.store.list_approvals(&of_none).await.unwrap().is_empty());
    let by_agent = ApprovalFilter::all().agent(created.agent_id.clone());
    assert_eq!(
        ids(env.store.list_approvals(&by_agent).await.unwrap()),
        std::slice::from_ref(&created.id)
    );
    let by_owner = ApprovalFilter::all().owner("alice");
    assert_eq!(env.store.list_approvals(&by_owner).await.unwrap().len(), 2);
    let nobody = ApprovalFilter::all().owner("bob");
    assert!(env.store.list_approvals(&nobody).await.unwrap().is_empty());
    let by_binding = ApprovalFilter::all().binding(other.binding.clone());
    assert_eq!(
        ids(env.store.list_approvals(&by_binding).await.unwrap()),
        std::slice::from_ref(&other.id)
    );
    env.store
        .decide_approval(&other.id, &"alice".into(), Decision::Deny)
        .await
        .unwrap();
    let pending = ApprovalFilter::all().status(ApprovalStatus::Pending);
    assert_eq!(
        ids(env.store.list_approvals(&pending).await.unwrap()),
        std::slice::from_ref(&created.id)
    );
    let denied = ApprovalFilter::all().status(ApprovalStatus::Denied);
    assert_eq!(
        ids(env.store.list_approvals(&denied).await.unwrap()),
        [other.id]
    );

    // Refused by every store alike, and nothing kept.
    let mut hidden = new.clone();
    hidden.binding_message = "Pay 50 EUR to \u{202E}EMCA".into();
    let mut not_an_object = new;
    not_an_object.details = Some(json!([1, 2]));
    for bad in [hidden, not_an_object] {
        let refused = env.store.create_approval(bad).await;
        assert!(
            matches!(refused, Err(StoreError::Input(InputError::Invalid(_)))),
            "{refused:?}"
        );
    }
    assert_eq!(
        env.store
            .list_approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .len(),
        2
    );
    // The task and orchestrator of a task token's request are kept too.
    let mut of_task = asked(&env, "tasked", 5).await;
    of_task.task_id = Some("t-1".into());
    of_task.orchestrator = Some("agt_conductor".into());
    let tasked = env.store.create_approval(of_task).await.unwrap();
    assert_eq!(
        (tasked.task_id.as_deref(), tasked.orchestrator.as_ref()),
        (Some("t-1"), Some(&"agt_conductor".into()))
    );
    let read = env.store.approval(&tasked.id).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&tasked),
        "task and orchestrator read back"
    );
}

pub async fn case_an_approval_is_decided_once<B: Backend>(env: Env<B>) {
    let first = env
        .store
        .create_approval(asked(&env, "payer", 50).await)
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(5));
    let approved = env
        .store
        .decide_approval(
            &first.id,
            &"bob".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.decided_by, Some("bob".into()));
    assert_eq!(approved.decided_at, Some(env.now_micros()));
    assert_eq!((approved.uses, approved.uses_remaining), (Some(1), Some(1)));
    assert_eq!(
        approved.expires_at, first.expires_at,
        "no window: the pending expiry stands"
    );
    assert_eq!(
        env.store.approval(&first.id).await.unwrap(),
        Some(approved.clone())
    );
    for again in [
        Decision::Approve(ApprovalBounds::default().uses(5)),
        Decision::Deny,
    ] {
        let refused = env
            .store
            .decide_approval(&first.id, &"alice".into(), again)
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Conflict(Conflict::ApprovalNotPending {
                    status: "approved",
                    ..
                }))
            ),
            "{refused:?}"
        );
    }
    assert_eq!(
        env.store.approval(&first.id).await.unwrap(),
        Some(approved),
        "unchanged"
    );

    let second = env
        .store
        .create_approval(asked(&env, "other", 9).await)
        .await
        .unwrap();
    let bad = env
        .store
        .decide_approval(
            &second.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default().uses(0)),
        )
        .await;
    assert!(
        matches!(bad, Err(StoreError::Input(InputError::Invalid(_)))),
        "{bad:?}"
    );
    env.store
        .decide_approval(&second.id, &"alice".into(), Decision::Deny)
        .await
        .unwrap();
    let late = env
        .store
        .decide_approval(
            &second.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::Conflict(Conflict::ApprovalNotPending {
                status: "denied",
                ..
            }))
        ),
        "{late:?}"
    );
    assert_eq!(
        env.store.consume_approval(&second.binding).await.unwrap(),
        None,
        "denied admits nothing"
    );
    let unknown = env
        .store
        .decide_approval(&"apr_missing".into(), &"alice".into(), Decision::Deny)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(NotFound::Approval(_)))),
        "{unknown:?}"
    );
}

pub async fn case_a_single_use_approval_is_consumed_exactly_once<B: Backend>(env: Env<B>) {
    let approval = env
        .store
        .create_approval(asked(&env, "payer", 50).await)
        .await
        .unwrap();
    assert_eq!(
        env.store.consume_approval(&approval.binding).await.unwrap(),
        None,
        "a pending approval admits nothing"
    );
    env.store
        .decide_approval(
            &approval.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await
        .unwrap();
    let mut consumers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = env.store.clone();
        let binding = approval.binding.clone();
        consumers.spawn(async move { store.consume_approval(&binding).await.unwrap() });
    }
    let mut admitted = Vec::new();
    while let Some(consumed) = consumers.join_next().await {
        admitted.extend(consumed.unwrap());
    }
    assert_eq!(admitted.len(), 1, "exactly one of 50 concurrent consumers");
    assert_eq!(admitted[0].id, approval.id);
    assert_eq!(admitted[0].uses_remaining, Some(0));
    let spent = env.store.approval(&approval.id).await.unwrap().unwrap();
    assert_eq!(spent.status, ApprovalStatus::Used);
}

pub async fn case_uses_bound_how_often_an_approval_admits<B: Backend>(env: Env<B>) {
    let approval = env
        .store
        .create_approval(asked(&env, "payer", 50).await)
        .await
        .unwrap();
    env.store
        .decide_approval(
            &approval.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default().uses(3)),
        )
        .await
        .unwrap();
    for left in [2, 1, 0] {
        let used = env
            .store
            .consume_approval(&approval.binding)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(used.uses_remaining, Some(left));
    }
    assert_eq!(
        env.store.consume_approval(&approval.binding).await.unwrap(),
        None
    );
    let other = asked(&env, "other", 50).await;
    assert_ne!(
        other.binding, approval.binding,
        "another token asks for something else"
    );
    assert_eq!(
        env.store.consume_approval(&other.binding).await.unwrap(),
        None
    );
}

pub async fn case_approvals_expire<B: Backend>(env: Env<B>) {
    let late = env
        .store
        .create_approval(asked(&env, "payer", 50).await)
        .await
        .unwrap();
    env.clock.advance(LIFETIME);
    assert_eq!(
        env.store
            .approval(&late.id)
            .await
            .unwrap()
            .unwrap()
            .status_at(env.now_micros()),
        ApprovalStatus::Expired
    );
    let expired = ApprovalFilter::all().status(ApprovalStatus::Expired);
    assert_eq!(env.store.list_approvals(&expired).await.unwrap().len(), 1);
    let refused = env
        .store
        .decide_approval(
            &late.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict(Conflict::ApprovalNotPending {
                status: "expired",
                ..
            }))
        ),
        "{refused:?}"
    );

    // Approved with a window: usable until the window ends, even past the pending expiry.
    let windowed = env
        .store
        .create_approval(asked(&env, "windowed", 50).await)
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(60));
    let approved = env
        .store
        .decide_approval(
            &windowed.id,
            &"alice".into(),
            Decision::Approve(
                ApprovalBounds::default()
                    .uses(10)
                    .valid_for(Duration::from_secs(3600)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        approved.expires_at,
        env.now_micros() + Duration::from_secs(3600)
    );
    env.clock.advance(Duration::from_secs(3599));
    assert!(
        env.store
            .consume_approval(&windowed.binding)
            .await
            .unwrap()
            .is_some()
    );
    env.clock.advance(Duration::from_secs(1));
    assert_eq!(
        env.store.consume_approval(&windowed.binding).await.unwrap(),
        None,
        "window over"
    );
}

/// A thread-scoped child of a supervised agent is supervised: created so (whatever type it was
/// asked with), and its token's principal waits for a person's approval as its parent's does.
pub async fn case_a_child_of_a_supervised_agent_is_supervised<B: Backend>(env: Env<B>) {
    let payer = env
        .store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    for (slug, asked_type) in [
        ("payer-t1", None),
        ("payer-t2", Some(AgentType::Autonomous)),
        ("payer-t3", Some(AgentType::Ephemeral)),
    ] {
        let mut new = NewAgent::child(slug, payer.id.clone());
        if let Some(agent_type) = asked_type {
            new = new.with_type(agent_type);
        }
        let child = env.store.create_agent(new).await.unwrap();
        assert_eq!(child.agent_type, AgentType::Supervised, "{slug}");
        let token = env.token(&child.id, NewToken::new("t")).await;
        let principal = env.resolve(&token).await.unwrap();
        assert!(principal.is_supervised(), "{slug}");
        let supervision = crate::approval::Supervision::new(
            env.store.clone(),
            crate::ceiling::CapabilitySet::parse(["posts:publish"]).unwrap(),
        );
        let action = CriticalAction::new("posts:publish", &http::Method::POST, "/posts");
        let refused = supervision.check(&principal, &action).await;
        assert!(
            matches!(
                refused,
                Err(crate::approval::ApprovalRejection::Required(_))
            ),
            "{slug}: {refused:?}"
        );
    }
    // A child of an agent that is not supervised keeps the type it was asked with.
    let plain = env.agent("plain").await;
    let child = env
        .store
        .create_agent(NewAgent::child("plain-t1", plain.id.clone()))
        .await
        .unwrap();
    assert_eq!(child.agent_type, AgentType::Ephemeral);
    let token = env.token(&child.id, NewToken::new("t")).await;
    assert!(!env.resolve(&token).await.unwrap().is_supervised());
}

/// Counts the approvals it is told about.
#[derive(Clone, Default)]
struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl crate::approval::ApprovalNotifier for Counting {
    async fn notify(
        &self,
        _approval: &crate::approval::Approval,
    ) -> Result<(), crate::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Many identical requests at once, before and after an approved use, make one pending
/// approval, tell the person once, and are all named that approval.
pub async fn case_concurrent_identical_requests_make_one_approval<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let token = env.token(&agent.id, NewToken::new("t")).await;
    let principal = std::sync::Arc::new(env.resolve(&token).await.unwrap());
    let told = Counting::default();
    let supervision = crate::approval::Supervision::new(
        env.store.clone(),
        crate::ceiling::CapabilitySet::parse(["posts:publish"]).unwrap(),
    )
    .notifier(told.clone())
    .clock(env.clock.clone());
    let action = CriticalAction::new("posts:publish", &http::Method::POST, "/posts")
        .details(json!({"title": "launch"}))
        .message("Publish \"launch\"");
    let burst = || async {
        let checks: Vec<_> = (0..50)
            .map(|_| {
                let (supervision, principal, action) =
                    (supervision.clone(), principal.clone(), action.clone());
                tokio::spawn(async move { supervision.check(&principal, &action).await })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for check in checks {
            match check.await.unwrap() {
                Err(crate::approval::ApprovalRejection::Required(asked)) => {
                    ids.insert(asked.id().clone());
                }
                other => panic!("{other:?}"),
            }
        }
        ids
    };
    let pending = ApprovalFilter::all().status(ApprovalStatus::Pending);
    let first = burst().await;
    assert_eq!(first.len(), 1, "every request is named one approval");
    assert_eq!(
        env.store.list_approvals(&pending).await.unwrap().len(),
        1,
        "one pending approval"
    );
    assert_eq!(told.0.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Approved and used once: the next burst asks again, once.
    let id = first.into_iter().next().unwrap();
    env.store
        .decide_approval(
            &id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await
        .unwrap();
    supervision.check(&principal, &action).await.unwrap();
    let second = burst().await;
    assert_eq!(second.len(), 1);
    assert!(!second.contains(&id));
    assert_eq!(env.store.list_approvals(&pending).await.unwrap().len(), 1);
    assert_eq!(told.0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A token may have only so many approvals pending: beyond that a request is refused (`429`,
/// nothing kept, nobody told); expired approvals are purged after the retention; a person's
/// list holds only the agents they may see, newest first, bounded.
pub async fn case_approvals_are_bounded_listed_and_purged<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let token = env.token(&agent.id, NewToken::new("t")).await;
    let principal = env.resolve(&token).await.unwrap();
    let told = Counting::default();
    let supervision = crate::approval::Supervision::new(
        env.store.clone(),
        crate::ceiling::CapabilitySet::parse(["posts:publish"]).unwrap(),
    )
    .notifier(told.clone())
    .clock(env.clock.clone());
    let publish = |n: usize| {
        CriticalAction::new("posts:publish", &http::Method::POST, "/posts")
            .details(json!({ "n": n }))
            .message(format!("Publish post {n}"))
    };
    let max = crate::approval::DEFAULT_MAX_PENDING as usize;
    for n in 0..max {
        env.clock.advance(Duration::from_millis(1));
        let asked = supervision.check(&principal, &publish(n)).await;
        assert!(
            matches!(asked, Err(crate::approval::ApprovalRejection::Required(_))),
            "{asked:?}"
        );
    }
    let refused = supervision.check(&principal, &publish(max)).await;
    let Err(crate::approval::ApprovalRejection::TooMany { retry_after }) = refused else {
        panic!("{refused:?}");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= LIFETIME);
    let response: http::Response<String> =
        crate::approval::ApprovalRejection::TooMany { retry_after }.to_response();
    assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(http::header::RETRY_AFTER));
    // An identical retry of a pending one is still named it.
    assert!(matches!(
        supervision.check(&principal, &publish(0)).await,
        Err(crate::approval::ApprovalRejection::Required(_))
    ));
    let all = env
        .store
        .list_approvals(&ApprovalFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), max, "nothing kept beyond the bound");
    assert_eq!(told.0.load(std::sync::atomic::Ordering::SeqCst), max);

    // Lists: newest first, bounded, only what the user may see.
    let alice = crate::store::Managed::new(&env.store, "alice");
    let newest = alice
        .approvals(&ApprovalFilter::all().last(3))
        .await
        .unwrap();
    let expected: Vec<_> = all.iter().take(3).map(|a| a.id.clone()).collect();
    assert_eq!(
        newest.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(all[0].binding_message, format!("Publish post {}", max - 1));
    let too_many = alice
        .approvals(&ApprovalFilter::all().last(crate::approval::MAX_LISTED + 1))
        .await;
    assert!(
        matches!(too_many, Err(StoreError::Input(InputError::Invalid(_)))),
        "{too_many:?}"
    );
    let stranger = crate::store::Managed::new(&env.store, "bob");
    assert!(
        stranger
            .approvals(&ApprovalFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stranger
            .approvals(&ApprovalFilter::all().agent(agent.id.clone()))
            .await
            .unwrap()
            .is_empty()
    );

    // Expired a day ago, kept for a week, then purged; a live one stays.
    env.clock.advance(LIFETIME + Duration::from_secs(86_400));
    let live = supervision.check(&principal, &publish(max)).await;
    let Err(crate::approval::ApprovalRejection::Required(live)) = live else {
        panic!("the expired ones no longer count: {live:?}");
    };
    let week = Duration::from_secs(7 * 86_400);
    assert_eq!(env.store.purge_approvals(week).await.unwrap(), 0);
    env.clock.advance(week);
    assert_eq!(env.store.purge_approvals(week).await.unwrap(), max);
    let left = env
        .store
        .list_approvals(&ApprovalFilter::all())
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        [live.id().clone()]
    );
}

/// An approved approval can be revoked while it stands: it admits nothing more, stays denied
/// until it expires; a pending, revoked or spent one cannot be.
pub async fn case_an_approval_given_can_be_revoked<B: Backend>(env: Env<B>) {
    let new = asked(&env, "payer", 50).await;
    let binding = new.binding.clone();
    let asked_for = env.store.create_approval(new).await.unwrap();
    let pending = env
        .store
        .decide_approval(&asked_for.id, &"alice".into(), Decision::Revoke)
        .await;
    assert!(
        matches!(
            pending,
            Err(StoreError::Conflict(Conflict::ApprovalNotApproved {
                status: "pending",
                ..
            }))
        ),
        "{pending:?}"
    );
    env.store
        .decide_approval(
            &asked_for.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default().uses(5)),
        )
        .await
        .unwrap();
    assert!(
        env.store
            .consume_approval(&binding)
            .await
            .unwrap()
            .is_some()
    );
    let revoked = env
        .store
        .decide_approval(&asked_for.id, &"bob".into(), Decision::Revoke)
        .await
        .unwrap();
    assert_eq!(revoked.status, ApprovalStatus::Denied);
    assert_eq!(revoked.uses_remaining, Some(0));
    assert_eq!(
        revoked.decided_by,
        Some("alice".into()),
        "the approver stays"
    );
    let stored = env.store.approval(&asked_for.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.uses_remaining),
        (ApprovalStatus::Denied, Some(0))
    );
    assert!(
        env.store
            .consume_approval(&binding)
            .await
            .unwrap()
            .is_none(),
        "admits nothing more"
    );
    let twice = env
        .store
        .decide_approval(&asked_for.id, &"alice".into(), Decision::Revoke)
        .await;
    assert!(
        matches!(
            twice,
            Err(StoreError::Conflict(Conflict::ApprovalNotApproved { .. }))
        ),
        "{twice:?}"
    );
}

/// The binding message is part of the binding: an approval of "Publish \"launch\"" does not
/// admit the same request worded otherwise for the person, which asks anew.
pub async fn case_an_approval_binds_its_message<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let token = env.token(&agent.id, NewToken::new("t")).await;
    let principal = env.resolve(&token).await.unwrap();
    let supervision = crate::approval::Supervision::new(
        env.store.clone(),
        crate::ceiling::CapabilitySet::parse(["posts:publish"]).unwrap(),
    )
    .clock(env.clock.clone());
    let pay = |message: &str| {
        CriticalAction::new("posts:publish", &http::Method::POST, "/posts")
            .details(json!({"title": "launch"}))
            .message(message)
    };
    let read = pay("Publish \"launch\"");
    let reworded = pay("Fix a typo");
    let Err(crate::approval::ApprovalRejection::Required(asked)) =
        supervision.check(&principal, &read).await
    else {
        panic!("a supervised agent waits");
    };
    env.store
        .decide_approval(
            asked.id(),
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await
        .unwrap();
    let other = supervision.check(&principal, &reworded).await;
    let Err(crate::approval::ApprovalRejection::Required(other)) = other else {
        panic!("another message is another request: {other:?}");
    };
    assert_ne!(other.id(), asked.id());
    assert_eq!(other.binding_message(), "Fix a typo");
    supervision
        .check(&principal, &read)
        .await
        .expect("what the person read is admitted");
}

/// A retry racing the person's approval: `consume_approval` found the approval pending, the
/// person approved it, then `request_approval` ran. It spends the approved one
/// ([`Requested::Approved`](crate::approval::Requested::Approved)) and asks for nothing: no
/// second pending approval (and notification) whose approval would grant a second use.
pub async fn case_an_approval_given_before_the_ask_is_spent_not_asked_again<B: Backend>(
    env: Env<B>,
) {
    let new = asked(&env, "payer", 50).await;
    let crate::approval::Requested::Created(first) =
        env.store.request_approval(new.clone()).await.unwrap()
    else {
        panic!("the first ask creates");
    };
    // The retry: nothing approved yet.
    assert!(
        env.store
            .consume_approval(&new.binding)
            .await
            .unwrap()
            .is_none()
    );
    // Meanwhile the person approves it, once.
    env.store
        .decide_approval(
            &first.id,
            &"alice".into(),
            Decision::Approve(ApprovalBounds::default()),
        )
        .await
        .unwrap();
    let requested = env.store.request_approval(new.clone()).await.unwrap();
    let crate::approval::Requested::Approved(used) = requested else {
        panic!("the approved one is spent, not asked anew: {requested:?}");
    };
    assert_eq!(used.id, first.id);
    assert_eq!(
        (used.status, used.uses_remaining),
        (ApprovalStatus::Used, Some(0))
    );
    let pending = env
        .store
        .list_approvals(&ApprovalFilter::all().status(ApprovalStatus::Pending))
        .await
        .unwrap();
    assert!(pending.is_empty(), "no second approval: {pending:?}");
    // Spent: the next ask is a new approval.
    assert!(matches!(
        env.store.request_approval(new).await.unwrap(),
        crate::approval::Requested::Created(_)
    ));
}

/// The bound on pending approvals is the agent's, all its tokens together: another token of
/// the same agent (a delegated child, a second token) does not get a bound of its own.
pub async fn case_pending_approvals_are_bounded_per_agent<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
        .await
        .unwrap();
    let first = env.token(&agent.id, NewToken::new("t1")).await;
    let second = env.token(&agent.id, NewToken::new("t2")).await;
    let first = env.resolve(&first).await.unwrap();
    let second = env.resolve(&second).await.unwrap();
    let supervision = crate::approval::Supervision::new(
        env.store.clone(),
        crate::ceiling::CapabilitySet::parse(["posts:publish"]).unwrap(),
    )
    .max_pending(Some(3))
    .clock(env.clock.clone());
    let publish = |n: usize| {
        CriticalAction::new("posts:publish", &http::Method::POST, "/posts")
            .details(json!({ "n": n }))
            .message(format!("Publish post {n}"))
    };
    for n in 0..3 {
        assert!(matches!(
            supervision.check(&first, &publish(n)).await,
            Err(crate::approval::ApprovalRejection::Required(_))
        ));
    }
    let other_token = supervision.check(&second, &publish(3)).await;
    assert!(
        matches!(
            other_token,
            Err(crate::approval::ApprovalRejection::TooMany { .. })
        ),
        "another token of the agent shares its bound: {other_token:?}"
    );
    assert_eq!(
        env.store
            .list_approvals(&ApprovalFilter::all().agent(agent.id.clone()))
            .await
            .unwrap()
            .len(),
        3
    );
    // Another agent has a bound of its own.
    let other = asked(&env, "other", 1).await;
    assert!(matches!(
        env.store.request_approval(other).await.unwrap(),
        crate::approval::Requested::Created(_)
    ));
}

/// A user who may see more agents than one approval query of `Managed::approvals` names (500)
/// reads
/// every approval of theirs, newest first and bounded as for a few, and a grantee of one agent
/// only that agent's.
pub async fn case_approvals_are_listed_across_many_agents<B: Backend>(env: Env<B>) {
    let many = 2 * crate::store::AGENTS_PER_APPROVAL_QUERY + 1;
    for n in 0..many {
        env.store
            .create_agent(NewAgent::new(format!("m-{n:05}"), "alice"))
            .await
            .unwrap();
    }
    // By slug, one in the first chunk, one in the last.
    let mut asked_ids = Vec::new();
    for (slug, amount) in [("z-last", 1), ("a-first", 2), ("z-later", 3)] {
        env.clock.advance(Duration::from_millis(1));
        let approval = env
            .store
            .create_approval(asked(&env, slug, amount).await)
            .await
            .unwrap();
        asked_ids.push(approval.id);
    }
    let newest_first: Vec<_> = asked_ids.iter().rev().cloned().collect();
    let alice = crate::store::Managed::new(&env.store, "alice");
    let ids = |listed: Vec<crate::approval::Approval>| {
        listed.into_iter().map(|a| a.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(alice.approvals(&ApprovalFilter::all()).await.unwrap()),
        newest_first
    );
    assert_eq!(
        ids(alice
            .approvals(&ApprovalFilter::all().last(2))
            .await
            .unwrap()),
        newest_first[..2]
    );
    let first = env.store.agent_by_slug("a-first").await.unwrap().unwrap();
    env.store
        .grant(&first.id, &"bob".into(), crate::store::AccessRole::Viewer)
        .await
        .unwrap();
    let bob = crate::store::Managed::new(&env.store, "bob");
    assert_eq!(
        ids(bob.approvals(&ApprovalFilter::all()).await.unwrap()),
        [asked_ids[1].clone()]
    );
}
