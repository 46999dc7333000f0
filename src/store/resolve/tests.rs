//! Steps 2–5 on hand-built records: the edges no built-in store reaches (a record whose
//! agent or parent is not the one it names), and the boundaries of each check.

use std::sync::Arc;

use super::*;
use crate::TokenResolver;
use crate::ceiling::Policy;
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::StoreConfig;
use crate::store::backend::{AgentChange, AgentFilter, OneTask, Uses};
use crate::store::model::{Agent, AgentStatus, AgentType};
use crate::token::{TokenFormat, TokenHash};

const NOW: i128 = 1_767_225_600_000_000_000;

fn at(nanos: i128) -> Option<time::OffsetDateTime> {
    Some(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
}

fn agent(id: &str, parent: Option<&str>) -> Agent {
    Agent {
        id: AgentId::from(id),
        slug: id.into(),
        owner: UserId::from("alice"),
        agent_type: AgentType::Autonomous,
        status: AgentStatus::Active,
        policy: Arc::new(Policy::unrestricted()),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        expires_at: None,
        parent: parent.map(AgentId::from),
        scopes: None,
        modes: None,
        last_used_at: None,
        last_rotated_at: None,
        is_orchestrator: false,
    }
}

fn token(agent: &str) -> TokenInfo {
    TokenInfo {
        id: TokenId::from("tok_1"),
        agent_id: AgentId::from(agent),
        display_prefix: String::new(),
        label: String::new(),
        capabilities: None,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        created_by: None,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        task_completed_at: None,
        max_operations: None,
        operations_remaining: None,
        expires_on_completion: false,
        task_id: None,
        intent: None,
        orchestrator: None,
        environment: None,
        delegated_by: None,
        delegation_parent: None,
        delegation_depth: 0,
        resource: None,
        client_id: None,
    }
}

fn check(token: &TokenInfo, agent: &Agent, parent: Option<&Agent>) -> Result<(), InvalidReason> {
    check_agent(token, agent, parent, agent.slug.as_bytes(), NOW)
}

#[test]
fn a_token_stored_for_another_agent_is_a_mismatch() {
    let child = agent("child", None);
    assert_eq!(
        check(&token("other"), &child, None),
        Err(InvalidReason::AgentMismatch)
    );
    assert_eq!(check(&token("child"), &child, None), Ok(()));
}

#[test]
fn a_presented_slug_of_another_agent_is_a_mismatch() {
    let writer = agent("writer", None);
    assert_eq!(
        check_agent(&token("writer"), &writer, None, b"reader", NOW),
        Err(InvalidReason::AgentMismatch)
    );
}

#[test]
fn a_child_with_its_own_active_parent_is_admitted() {
    let child = agent("child", Some("parent"));
    let parent = agent("parent", None);
    assert_eq!(check(&token("child"), &child, Some(&parent)), Ok(()));
}

#[test]
fn a_parent_other_than_the_one_the_child_names_is_a_mismatch() {
    let child = agent("child", Some("parent"));
    let stranger = agent("stranger", None);
    assert_eq!(
        check(&token("child"), &child, Some(&stranger)),
        Err(InvalidReason::AgentMismatch)
    );
}

#[test]
fn a_child_whose_parent_is_gone_is_refused_as_disabled() {
    let child = agent("child", Some("parent"));
    assert_eq!(
        check(&token("child"), &child, None),
        Err(InvalidReason::AgentDisabled)
    );
}

#[test]
fn a_disabled_parent_refuses_its_child() {
    let child = agent("child", Some("parent"));
    let mut parent = agent("parent", None);
    parent.status = AgentStatus::Disabled;
    assert_eq!(
        check(&token("child"), &child, Some(&parent)),
        Err(InvalidReason::AgentDisabled)
    );
}

#[test]
fn a_parent_expires_its_child_at_its_expiry_instant() {
    let child = agent("child", Some("parent"));
    let mut parent = agent("parent", None);
    parent.expires_at = at(NOW + 1);
    assert_eq!(check(&token("child"), &child, Some(&parent)), Ok(()));
    parent.expires_at = at(NOW);
    assert_eq!(
        check(&token("child"), &child, Some(&parent)),
        Err(InvalidReason::AgentExpired)
    );
}

#[test]
fn an_agent_expires_at_its_expiry_instant() {
    let mut writer = agent("writer", None);
    writer.expires_at = at(NOW + 1);
    assert_eq!(check(&token("writer"), &writer, None), Ok(()));
    writer.expires_at = at(NOW);
    assert_eq!(
        check(&token("writer"), &writer, None),
        Err(InvalidReason::AgentExpired)
    );
}

/// A backend whose records are whatever the test set last.
struct Forgetful {
    agent: std::sync::Mutex<Arc<Agent>>,
    info: TokenInfo,
    /// Each settled use, as `spent`.
    settled: std::sync::Mutex<Vec<bool>>,
    orchestrator: Option<Arc<Agent>>,
}

struct Found {
    info: TokenInfo,
    agent: Arc<Agent>,
    orchestrator: Option<Arc<Agent>>,
}

impl StoredToken for Found {
    fn info(&self) -> &TokenInfo {
        &self.info
    }
    fn agent(&self) -> Arc<Agent> {
        self.agent.clone()
    }
    fn parent(&self) -> Option<Arc<Agent>> {
        None
    }
    fn uses(&self) -> Option<Uses> {
        None
    }
    fn orchestrator(&self) -> Option<Arc<Agent>> {
        self.orchestrator.clone()
    }
}

/// Only the request path: every management call is refused.
#[async_trait::async_trait]
impl Backend for Forgetful {
    type Record = Found;

    async fn insert_agent(&self, _: &Agent) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("agents"))
    }
    async fn agent(&self, _: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(None)
    }
    async fn agent_by_slug(&self, _: &str) -> Result<Option<Agent>, StoreError> {
        Ok(None)
    }
    async fn agents(&self, _: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        Ok(Vec::new())
    }
    async fn update_agent(
        &self,
        _: &AgentId,
        _: &AgentChange,
    ) -> Result<Option<Agent>, StoreError> {
        Ok(None)
    }
    async fn delete_agent(&self, _: &AgentId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn insert_token(
        &self,
        _: &TokenHash,
        _: &TokenInfo,
        _: Option<&OneTask>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("tokens"))
    }
    async fn tokens(&self, _: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn revoke_token(
        &self,
        _: &AgentId,
        _: &TokenId,
        _: time::OffsetDateTime,
    ) -> Result<Option<TokenInfo>, StoreError> {
        Ok(None)
    }

    fn find_now(&self, _: &TokenHash) -> Option<Result<Option<Found>, ResolveError>> {
        Some(Ok(Some(Found {
            info: self.info.clone(),
            agent: self.agent.lock().unwrap().clone(),
            orchestrator: self.orchestrator.clone(),
        })))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<Found>, ResolveError> {
        self.find_now(hash).unwrap()
    }

    async fn reserve(&self, _: &Found) -> Result<Reservation, ResolveError> {
        Ok(Reservation::Reserved)
    }

    fn settle(
        &self,
        _: &TokenId,
        spent: bool,
        _: time::OffsetDateTime,
    ) -> Option<crate::resolver::SettleFuture> {
        self.settled.lock().unwrap().push(spent);
        None
    }
}

fn forgetful() -> Forgetful {
    Forgetful {
        agent: std::sync::Mutex::new(Arc::new(agent("writer", None))),
        info: token("writer"),
        settled: std::sync::Mutex::default(),
        orchestrator: None,
    }
}

/// `backend` as a store with alice as the owner.
fn store(backend: Forgetful) -> Store<Forgetful> {
    let users = crate::store::MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let format = TokenFormat::new("acme").unwrap();
    Store::from_backend(backend, StoreConfig::new(format, users))
}

fn lookup() -> TokenLookup<'static> {
    TokenLookup::new(TokenHash::of("acme_writer_secret"), "writer", false)
}

#[test]
fn a_store_answers_at_once_when_record_and_owner_are_at_hand() {
    let resolver = store(forgetful());
    let principal = resolver
        .resolve_now(&lookup())
        .expect("answered without waiting")
        .expect("admitted");
    assert_eq!(principal.agent_id(), Some(&AgentId::from("writer")));
}

#[test]
fn a_store_settles_uses_through_its_backend() {
    let resolver = store(forgetful());
    assert!(resolver.settle_use(&TokenId::from("tok_1"), true).is_none());
    assert!(
        resolver
            .settle_use(&TokenId::from("tok_1"), false)
            .is_none()
    );
    assert_eq!(*resolver.backend().settled.lock().unwrap(), [true, false]);
}

/// A backend that knows nothing of delegation (the trait's defaults) never admits a
/// delegated or orchestrated token: the chain it cannot show is a refusal, not a bypass.
#[tokio::test]
async fn a_backend_without_chains_refuses_delegated_and_task_tokens() {
    let mut delegated = forgetful();
    delegated.info.delegation_parent = Some(TokenId::from("tok_0"));
    delegated.info.delegation_depth = 1;
    let mut orchestrated = forgetful();
    orchestrated.info.orchestrator = Some(AgentId::from("conductor"));
    for backend in [delegated, orchestrated] {
        let refused = resolve(&store(backend), &lookup()).await;
        assert_eq!(
            refused.err().and_then(|error| error.reason()),
            Some(InvalidReason::DelegatorRefused)
        );
    }
}

/// An orchestrator stored as a thread-scoped child (before that was refused) has no
/// parent's bound on its task tokens: they are refused, not admitted unbounded.
#[tokio::test]
async fn a_task_token_of_an_orchestrator_with_a_parent_is_refused() {
    let task = |parent: Option<&str>| {
        let mut backend = forgetful();
        backend.info.orchestrator = Some(AgentId::from("conductor"));
        let mut conductor = agent("conductor", parent);
        conductor.is_orchestrator = true;
        backend.orchestrator = Some(Arc::new(conductor));
        backend
    };
    assert!(resolve(&store(task(None)), &lookup()).await.is_ok());
    let refused = resolve(&store(task(Some("boss"))), &lookup()).await;
    assert_eq!(
        refused.err().and_then(|error| error.reason()),
        Some(InvalidReason::DelegatorRefused)
    );
}

#[tokio::test]
async fn the_pipeline_never_reuses_a_verdict() {
    let store = store(forgetful());
    let lookup = lookup();
    resolve(&store, &lookup).await.expect("admitted");
    let mut disabled = agent("writer", None);
    disabled.status = AgentStatus::Disabled;
    *store.backend().agent.lock().unwrap() = Arc::new(disabled);
    let refused = resolve(&store, &lookup).await;
    assert_eq!(
        refused.err().and_then(|error| error.reason()),
        Some(InvalidReason::AgentDisabled),
        "the pipeline decides afresh on every call"
    );
}
