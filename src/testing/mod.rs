//! The conformance suite: one behaviour, every store (feature `testing`).
//!
//! Every store shipped with this crate passes the same cases — creating and listing agents,
//! minting, resolving, revoking and rotating tokens, use limits, thread-scoped children,
//! grants, the audit trail. A store written outside this crate runs them with one macro call.
//!
//! Longer than most files: the macro names every case of every section, so that a store's
//! author reads the whole suite, and what each section needs, in one place.
//!
//! # For a store author
//!
//! Enable the feature for your tests:
//!
//! ```toml
//! [dev-dependencies]
//! tower-agent-auth = { version = "0.1", features = ["testing"] }
//! ```
//!
//! Write an `open` function (an `async fn` or anything callable as one) that the suite calls
//! once per case:
//!
//! ```text
//! async fn open(users: MemoryUserDirectory, clock: Arc<ManualClock>)
//!     -> Option<(Store<YourBackend>, impl Future<Output = ()>)>
//! ```
//!
//! It returns a fresh, empty store that
//!
//! - looks owners up in `users` (the cases add, demote, deactivate and remove users there and
//!   expect the next resolution to see it),
//! - reads the time from `clock` (the cases move it forward),
//! - mints tokens of the format [`format()`] (`acme`, accepting legacy tokens) with the default
//!   [`LifetimePolicy`](crate::store::LifetimePolicy) — [`config`] builds a
//!   [`StoreConfig`] with all of this,
//!
//! and a future the suite awaits after the case passed (drop a temporary database there).
//! `None` skips the case, e.g. when the database server is not configured.
//!
//! Then, in an integration test (`tests/my_store.rs`):
//!
//! ```
//! use std::sync::Arc;
//!
//! use tower_agent_auth::clock::ManualClock;
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
//!
//! async fn open(
//!     users: MemoryUserDirectory,
//!     clock: Arc<ManualClock>,
//! ) -> Option<(MemoryStore, std::future::Ready<()>)> {
//!     let store = MemoryStore::with_config(tower_agent_auth::testing::config(&users, &clock));
//!     Some((store, std::future::ready(())))
//! }
//!
//! tower_agent_auth::conformance_suite!(open);
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[test]` function per case, named after it (for instance
//! `case_revoked_token_is_refused`); each runs on its own multi-threaded tokio runtime, so the
//! test crate needs no tokio dependency of its own.
//!
//! # Sections
//!
//! The cases come in sections, each a module here:
//!
//! - `resolution` — what a token resolves to, and every reason it is refused;
//! - `lifecycle` — agents, tokens, rotation, purging and thread-scoped children;
//! - `grants` — grants and [`Managed`](crate::store::Managed)'s access rule;
//! - `audit` — the store's own audit trail, written and read back;
//! - `approval` — the backend's approval methods: approvals kept,
//!   decided once, spent exactly as often as approved (also under 50 concurrent consumers),
//!   expired.
//! - `delegation` — delegated and task tokens, their chains, shared uses, subtree revocation,
//!   completed tasks and ephemeral agents.
//! - `oauth` (feature `oauth`) — the backend's OAuth methods: clients kept under the
//!   registration cap (also under 20 concurrent registrations), codes redeemed once, refresh
//!   tokens rotated once in families revoked whole, one connection per person and client (each
//!   also raced by 20 tasks), what deleting a client or an agent takes with it, purging, and a
//!   token's audience and client reaching its principal; and device authorizations (RFC 8628,
//!   also runnable alone as `device`): answered once, polled with the slow-down bookkeeping
//!   kept, redeemed once (each race run by 20 tasks).
//! - `callback` (feature `callback`) — the callback receiver's records: a `state` taken once
//!   (also by 20 racing callbacks), one provider token per agent and provider (also when 20
//!   connect at once), listed and deleted, what deleting an agent takes with it, purging.
//!
//! `audit` needs the backend's audit trail ([`Backend::append_audit`] and
//! [`Backend::audit_events`]), `approval` its approval methods, `delegation` its delegation
//! subtrees and tasks, `oauth` its OAuth methods and delegation. `approval`, `delegation` and
//! `oauth` run only when named, so that a backend without them passes
//! `conformance_suite!(open)`:
//!
//! ```text
//! tower_agent_auth::conformance_suite!(open);
//! tower_agent_auth::conformance_suite!(open, [approval, delegation]);
//! tower_agent_auth::conformance_suite!(open, [oauth]); // with the feature `oauth`
//! tower_agent_auth::conformance_suite!(open, [callback]); // with the feature `callback`
//! ```
//!
//! A store without an audit log of its own runs the others by naming them:
//!
//! ```
//! # use std::sync::Arc;
//! # use tower_agent_auth::clock::ManualClock;
//! # use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
//! # async fn open(users: MemoryUserDirectory, clock: Arc<ManualClock>)
//! #     -> Option<(MemoryStore, std::future::Ready<()>)> {
//! #     let store = MemoryStore::with_config(tower_agent_auth::testing::config(&users, &clock));
//! #     Some((store, std::future::ready(())))
//! # }
//! tower_agent_auth::conformance_suite!(open, [resolution, lifecycle, grants]);
//! # fn main() {}
//! ```
//!
//! The helpers here ([`users`], [`clock`], [`config`], [`resolve`], [`concurrent_use_limit`])
//! serve a store's own tests beyond the suite too.

use std::future::Future;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};

use crate::ceiling::{CapabilitySet, Policy};
use crate::clock::{Clock, ManualClock};
use crate::store::{
    Agent, Backend, IssuedToken, MemoryUserDirectory, NewAgent, NewToken, Store, StoreConfig,
    UserRecord,
};
use crate::token::TokenFormat;
use crate::{AgentAuthLayer, InvalidReason, Principal, ResolveError, TokenLookup, TokenResolver};

#[doc(hidden)]
pub mod approval;
#[doc(hidden)]
pub mod audit;
#[cfg(feature = "callback")]
#[doc(hidden)]
pub mod callback;
#[doc(hidden)]
pub mod delegation;
#[cfg(feature = "oauth")]
#[doc(hidden)]
pub mod device;
#[doc(hidden)]
pub mod grants;
#[doc(hidden)]
pub mod lifecycle;
#[cfg(feature = "oauth")]
#[doc(hidden)]
pub mod oauth;
#[doc(hidden)]
pub mod resolution;
#[doc(hidden)]
pub mod spending;

/// What every case gets: the store under test, its users and its clock; and the setup most
/// cases share ("an agent of alice's with a token"), said once.
pub struct Env<B> {
    /// The store under test, fresh from `open`.
    pub store: Store<B>,
    /// Its owners: alice (`posts:*`, `comments:read`) and bob (unrestricted), see [`users`].
    pub users: MemoryUserDirectory,
    /// Its clock, see [`clock`].
    pub clock: Arc<ManualClock>,
}

impl<B: Backend> Env<B> {
    /// A new agent of alice's with this slug.
    pub async fn agent(&self, slug: &str) -> Agent {
        self.store
            .create_agent(NewAgent::new(slug, "alice"))
            .await
            .unwrap()
    }

    /// A token for `agent`, as `new` asks.
    pub async fn token(&self, agent: &crate::principal::AgentId, new: NewToken) -> IssuedToken {
        self.store.create_token(agent, new).await.unwrap()
    }

    /// A new agent of alice's with this slug, and a token of it labelled `t`.
    pub async fn agent_with_token(&self, slug: &str) -> (Agent, IssuedToken) {
        self.agent_with_token_as(slug, NewToken::new("t")).await
    }

    /// A new agent of alice's with this slug, and a token of it as `new` asks.
    pub async fn agent_with_token_as(&self, slug: &str, new: NewToken) -> (Agent, IssuedToken) {
        let agent = self.agent(slug).await;
        let token = self.token(&agent.id, new).await;
        (agent, token)
    }

    /// Resolves `token` the way the layer does.
    pub async fn resolve(&self, token: &IssuedToken) -> Result<Principal, ResolveError> {
        resolve(&self.store, token.token.expose_secret()).await
    }

    /// Why `token` is refused now; panics if it is admitted.
    pub async fn refusal(&self, token: &IssuedToken) -> InvalidReason {
        refused(self.resolve(token).await)
    }

    /// The clock's time, to the microsecond stores keep.
    pub fn now_micros(&self) -> time::OffsetDateTime {
        now_micros(&self.clock)
    }
}

/// Capabilities from patterns; panics on a bad one.
pub fn caps(patterns: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(patterns).unwrap()
}

/// The users every case starts with: alice (`posts:*`, `comments:read`) and bob
/// (unrestricted).
pub fn users() -> MemoryUserDirectory {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "alice",
        Policy::allow(caps(&["posts:*", "comments:read"])),
    ));
    users.insert(UserRecord::new("bob", Policy::unrestricted()));
    users
}

/// The clock every case starts with: 2026-01-01T00:00:00Z, moved only by the case.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
    ))
}

/// The token format the cases expect: prefix `acme`, legacy (checksum-less) tokens accepted.
pub fn format() -> TokenFormat {
    TokenFormat::new("acme").unwrap().accept_legacy(true)
}

/// A store configuration with [`format()`], these users and this clock.
pub fn config(users: &MemoryUserDirectory, clock: &Arc<ManualClock>) -> StoreConfig {
    StoreConfig::new(format(), users.clone()).clock(clock.clone())
}

/// The clock's time, truncated to the microsecond every store keeps.
pub fn now_micros(clock: &ManualClock) -> time::OffsetDateTime {
    let now = clock.now();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

/// Resolves a raw token the way the layer does for a request the application then answers
/// with a success: parsed by the store's format, answered by [`TokenResolver::resolve_now`] if
/// it can, else by [`TokenResolver::resolve`]; a reserved use is then settled as spent.
pub async fn resolve<R: TokenResolver>(store: &R, raw: &str) -> Result<Principal, ResolveError> {
    let parsed = store
        .token_format()
        .parse(raw)
        .expect("a well-formed token");
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    let verdict = match store.resolve_now(&lookup) {
        Some(verdict) => verdict,
        None => store.resolve(&lookup).await,
    };
    if let Ok(principal) = &verdict {
        if let (Some(_), Some(token)) = (principal.max_operations(), principal.token_id()) {
            if let Some(write) = store.settle_use(token, true) {
                write.await;
            }
        }
    }
    verdict
}

/// The reason of a refusal; panics on an admission or an unavailable store.
fn refused(result: Result<Principal, ResolveError>) -> InvalidReason {
    match result {
        Err(ResolveError::Invalid(reason)) => reason,
        Err(ResolveError::Refused(refused)) => refused.reason,
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(p) => panic!("expected a refusal, got a principal for {}", p.user_id()),
    }
}

/// 1 000 concurrent requests through the layer for a token limited to 100 operations, spread
/// over `stores` (two stores on one database stand for two nodes): exactly 100 are admitted.
/// `users` must hold bob, the agent's owner.
pub async fn concurrent_use_limit<B: Backend>(stores: Vec<Store<B>>, users: &MemoryUserDirectory) {
    let _ = users;
    let first = &stores[0];
    let agent = first
        .create_agent(NewAgent::new("swarm", "bob"))
        .await
        .unwrap();
    let t = first
        .create_token(&agent.id, NewToken::new("t").max_operations(100))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", t.token.expose_secret());
    let services: Vec<_> = stores
        .iter()
        .map(|store| {
            ServiceBuilder::new()
                .layer(AgentAuthLayer::new(store.clone()))
                .service_fn(|_: Request<String>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(String::new()))
                })
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let service = services[i % services.len()].clone();
        let bearer = bearer.clone();
        tasks.spawn(async move {
            let request = Request::builder()
                .header("authorization", bearer)
                .body(String::new())
                .unwrap();
            service.oneshot(request).await.unwrap().status()
        });
    }
    let (mut admitted, mut refused) = (0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((admitted, refused), (100, 900));
}

/// 200 concurrent requests through the layer, spread over a token limited to `limit`
/// operations and two children delegated from it (one limited to `limit` too, one without a
/// limit of its own), over `stores` (two stores on one database stand for two nodes):
/// exactly `limit` are admitted, since every request spends a use of the parent.
pub async fn concurrent_delegated_use_limit<B: Backend>(stores: Vec<Store<B>>, limit: u64) {
    use crate::delegation::Delegation;
    let first = &stores[0];
    let planner = first
        .create_agent(NewAgent::new("planner", "bob"))
        .await
        .unwrap();
    let worker = first
        .create_agent(NewAgent::new("worker", "bob"))
        .await
        .unwrap();
    let parent = first
        .create_token(&planner.id, NewToken::new("t").max_operations(limit))
        .await
        .unwrap();
    let secret = parent.token.expose_secret();
    let limited = first
        .delegate(
            secret,
            Delegation::to(worker.id.clone(), "a").max_operations(limit),
        )
        .await
        .unwrap();
    let unlimited = first
        .delegate(secret, Delegation::to(worker.id.clone(), "b"))
        .await
        .unwrap();
    let bearers: Vec<String> = [&parent, &limited, &unlimited]
        .iter()
        .map(|t| format!("Bearer {}", t.token.expose_secret()))
        .collect();
    let services: Vec<_> = stores
        .iter()
        .map(|store| {
            ServiceBuilder::new()
                .layer(AgentAuthLayer::new(store.clone()))
                // Every third request is refused by the application (403), which releases
                // the uses it reserved: spends and releases interleave down the chain.
                .service_fn(|request: Request<String>| async move {
                    let mut response = Response::new(String::new());
                    if request.headers().contains_key("x-refuse") {
                        *response.status_mut() = StatusCode::FORBIDDEN;
                    }
                    Ok::<_, std::convert::Infallible>(response)
                })
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let service = services[i % services.len()].clone();
        let bearer = bearers[i % bearers.len()].clone();
        tasks.spawn(async move {
            let mut request = Request::builder().header("authorization", bearer);
            if i % 3 == 0 {
                request = request.header("x-refuse", "1");
            }
            let request = request.body(String::new()).unwrap();
            service.oneshot(request).await.unwrap().status()
        });
    }
    let (mut admitted, mut forbidden, mut refused) = (0, 0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::FORBIDDEN => forbidden += 1,
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    // No use lost to a release that failed, none given twice: exactly the limit admitted.
    assert_eq!(admitted, limit, "{forbidden} forbidden, {refused} refused");
    assert_eq!(admitted + forbidden + refused, 200);
}

/// What the macro expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Runs one case on a fresh store from `open`, on its own runtime.
    pub fn run<B, O, F, C, Cleanup, Case>(open: O, case: Case)
    where
        B: Backend,
        O: FnOnce(MemoryUserDirectory, Arc<ManualClock>) -> F,
        F: Future<Output = Option<(Store<B>, Cleanup)>>,
        Cleanup: Future<Output = ()>,
        Case: FnOnce(Env<B>) -> C,
        C: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let users = users();
            let clock = clock();
            let Some((store, cleanup)) = open(users.clone(), clock.clone()).await else {
                return;
            };
            case(Env {
                store,
                users,
                clock,
            })
            .await;
            cleanup.await;
        });
    }
}

/// Runs the conformance suite against a store: one `#[test]` per case.
///
/// `conformance_suite!(open)` runs every section but `approval`, `delegation` and `oauth`;
/// `conformance_suite!(open, [resolution, lifecycle])` only those named (`resolution`,
/// `spending`, `lifecycle`, `grants`, `audit`, `approval`, `delegation`, `oauth`). `approval`,
/// `delegation` and `oauth` need the backend's approval methods, its delegation subtrees and
/// tasks, and its OAuth methods (and the feature `oauth`), so they run only when named: a
/// backend without them still passes the rest (and refuses every delegated token). `open` is a path to a function
/// `async fn(MemoryUserDirectory, Arc<ManualClock>) -> Option<(Store<B>, impl Future<Output = ()>)>`;
/// see the [`testing`](crate::testing) module for what it must return.
#[macro_export]
macro_rules! conformance_suite {
    ($open:path) => {
        $crate::conformance_suite!($open, [resolution, spending, lifecycle, grants, audit]);
    };
    ($open:path, [$($section:ident),* $(,)?]) => {
        $( $crate::conformance_suite!(@section $open, $section); )*
    };
    (@section $open:path, resolution) => {
        $crate::conformance_suite!(@cases $open, resolution:
            case_token_binds_agent_and_owner,
            case_unknown_token_is_refused,
            case_revoked_token_is_refused,
            case_expiry_follows_the_clock,
            case_disabled_agent_is_refused_until_enabled,
            case_owner_changes_apply_at_once,
            case_use_limit_is_exact,
            case_refused_requests_use_no_operation,
            case_expires_on_completion,
            case_concurrent_use_limit_is_exact,
            case_import_by_hash,
            case_disabled_identity_refuses_every_credential,
            case_an_admitted_token_sees_every_later_change,
            case_a_lookup_naming_another_agent_is_refused,
        );
    };
    (@section $open:path, spending) => {
        $crate::conformance_suite!(@cases $open, spending:
            case_exhausted_is_reported_before_an_inactive_owner,
            case_revoked_is_reported_before_expired,
            case_expired_is_reported_before_a_disabled_agent,
            case_a_disabled_agent_is_reported_before_an_expired_parent,
            case_a_disabled_agent_is_reported_before_an_inactive_owner,
            case_only_admitted_requests_spend_a_use,
            case_concurrent_refusals_leave_exactly_the_limit_to_successes,
            case_rotation_moves_the_uses_left_and_adds_none,
            case_a_request_waiting_for_a_use_sees_a_revocation,
        );
    };
    (@section $open:path, lifecycle) => {
        $crate::conformance_suite!(@cases $open, lifecycle:
            case_agents_round_trip,
            case_duplicate_slug_changes_nothing,
            case_invalid_slug_and_unknown_owner_are_refused,
            case_token_for_unknown_agent_is_refused,
            case_capabilities_outside_policy_change_nothing,
            case_lifetime_policy_is_enforced,
            case_list_and_get_show_metadata_only,
            case_foreign_or_unknown_token_cannot_be_revoked,
            case_revoke_all_and_delete,
            case_purge_removes_long_dead_tokens,
            case_purge_finds_tokens_by_every_end,
            case_rotation_with_grace,
            case_rotation_grace_never_outlasts_expiry_and_zero_revokes,
            case_rotation_is_recorded_on_the_identity,
            case_absurd_lifetimes_are_refused,
            case_thread_identity_lifecycle,
            case_children_are_never_wider_than_the_parent,
            case_token_capabilities_outside_the_owners_role_are_refused,
            case_lists_a_client_sets_are_bounded,
            case_hidden_characters_are_refused,
            case_a_policy_change_applies_at_the_next_request,
        );
    };
    (@section $open:path, delegation) => {
        $crate::conformance_suite!(@cases $open, delegation:
            case_chain_and_task_fields_round_trip,
            case_revoking_the_root_refuses_every_descendant,
            case_an_expiring_ancestor_refuses_its_descendants,
            case_ancestor_agent_changes_reach_descendants,
            case_deleting_an_ancestor_refuses_its_descendants,
            case_depth_limit_is_refused_with_a_clear_error,
            case_a_child_cannot_exceed_its_parent,
            case_uses_are_shared_down_the_chain,
            case_concurrent_uses_through_a_chain_are_exact,
            case_a_subtree_is_revoked_in_one_call,
            case_complete_task_ends_every_token_of_the_task,
            case_ephemeral_agents_are_clamped_and_serve_one_task,
            case_concurrent_mints_for_an_ephemeral_agent_serve_one_task,
            case_orchestrator_task_tokens,
            case_audit_records_the_chain,
            case_the_chain_bounds_scopes_modes_and_supervision,
            case_deleting_the_orchestrator_refuses_its_task_tokens,
            case_a_task_token_is_not_delegated_to_its_orchestrator,
            case_a_thread_scoped_child_cannot_be_an_orchestrator,
            case_a_supervised_orchestrators_task_tokens_are_supervised,
            case_a_task_token_is_minted_on_behalf_of_a_person_of_the_agent,
            case_a_completed_task_stays_ended_when_the_clock_steps_back,
            case_rotating_a_parent_ends_its_children_with_the_old_token,
            case_a_childs_task_and_limit_as_documented,
            case_purge_counts_the_delegated_tokens_it_removes,
        );
    };
    (@section $open:path, grants) => {
        $crate::conformance_suite!(@cases $open, grants:
            case_grants_are_kept_per_agent_and_user,
            case_access_role_matrix,
            case_agents_visible_to_are_owned_granted_and_their_children,
        );
    };
    (@section $open:path, audit) => {
        $crate::conformance_suite!(@cases $open, audit:
            case_a_large_audit_batch_is_written_whole_and_in_order,
            case_the_trail_is_read_by_owner_admin_and_operator,
            case_audit_answers_what_an_identity_did,
            case_audit_records_management_and_denials,
            case_audit_events_are_listed_by_time,
        );
    };
    (@section $open:path, approval) => {
        $crate::conformance_suite!(@cases $open, approval:
            case_approvals_round_trip_with_their_details,
            case_an_approval_is_decided_once,
            case_a_single_use_approval_is_consumed_exactly_once,
            case_uses_bound_how_often_an_approval_admits,
            case_approvals_expire,
            case_a_child_of_a_supervised_agent_is_supervised,
            case_concurrent_identical_requests_make_one_approval,
            case_approvals_are_bounded_listed_and_purged,
            case_an_approval_given_can_be_revoked,
            case_an_approval_binds_its_message,
            case_an_approval_given_before_the_ask_is_spent_not_asked_again,
            case_pending_approvals_are_bounded_per_agent,
            case_approvals_are_listed_across_many_agents,
        );
    };
    (@section $open:path, oauth) => {
        $crate::conformance_suite!(@cases $open, oauth:
            case_oauth_clients_round_trip,
            case_the_registration_cap_counts_live_registered_clients,
            case_concurrent_registrations_stay_under_the_cap,
            case_a_client_id_taken_twice_is_a_conflict,
            case_clients_are_updated_and_deleted,
            case_a_code_is_redeemed_once,
            case_concurrent_redemptions_redeem_a_code_once,
            case_a_replay_sees_the_family_its_redemption_started,
            case_a_refresh_token_rotates_once,
            case_concurrent_rotations_rotate_a_refresh_token_once,
            case_revoking_a_family_revokes_every_member,
            case_connect_finds_or_creates,
            case_concurrent_consents_make_one_connection,
            case_connections_are_listed_by_user_and_deleted,
            case_deleting_a_client_removes_its_codes_refresh_tokens_and_connections,
            case_deleting_an_agent_removes_its_connection_and_client,
            case_purge_removes_lapsed_oauth_records_and_keeps_live_ones,
            case_a_tokens_resource_and_client_reach_the_principal,
            case_a_delegated_token_keeps_its_delegators_audience,
        );
        $crate::conformance_suite!(@section $open, device);
    };
    (@section $open:path, device) => {
        $crate::conformance_suite!(@cases $open, device:
            case_device_authorizations_round_trip,
            case_a_device_is_answered_once,
            case_concurrent_answers_answer_a_device_once,
            case_polls_slow_a_device_down_and_the_interval_is_kept,
            case_a_device_code_is_redeemed_once,
            case_concurrent_polls_redeem_a_device_code_once,
            case_deleting_a_client_or_an_agent_removes_its_devices,
            case_purge_removes_lapsed_devices_and_keeps_live_ones,
        );
    };
    (@section $open:path, callback) => {
        $crate::conformance_suite!(@cases $open, callback:
            case_a_callback_state_is_taken_once,
            case_concurrent_callbacks_take_a_state_once,
            case_provider_tokens_are_one_per_agent_and_provider,
            case_concurrent_connections_keep_one_token,
            case_deleting_an_agent_removes_its_states_and_tokens,
            case_purge_removes_lapsed_callback_states,
        );
    };
    (@cases $open:path, $section:ident: $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::__private::run($open, $crate::testing::$section::$case);
            }
        )*
    };
}
