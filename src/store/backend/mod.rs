//! The persistence contract: what a store keeps and how, and nothing of what it means.
//!
//! [`Store`](super::Store) holds every rule — validation, minting, hashing, lifetimes, the
//! access rule, approval standing, the resolution pipeline — and asks its [`Backend`] only to
//! keep records and to take the few steps that must be atomic. A backend never decides whether
//! something is allowed; it stores what it is handed and answers what it is asked.
//!
//! Longer than most files: a trait is one item, and its methods — each a record kept or an
//! atomic step, with its contract — are read together with the table of steps below.
//!
//! # The atomic steps
//!
//! Each invariant that concurrent requests (and many nodes) could break is one method, which a
//! backend implements as one step — under one lock, in one transaction, or as one statement:
//!
//! | step | method | invariant |
//! |---|---|---|
//! | a slug is taken once | [`Backend::insert_agent`] | two agents never share a slug |
//! | one live task per single-task agent | [`Backend::insert_token`] with a [`OneTask`] | an ephemeral agent serves one task at a time |
//! | reserve a use | [`Backend::reserve`] | a use limit of N admits exactly N requests |
//! | settle a use | [`Backend::settle`] | a use is spent or given back once |
//! | retire and replace a token | [`Backend::rotate_token`] | rotating never adds uses; two rotations of one token never both succeed |
//! | revoke a delegation subtree | [`Backend::revoke_token_tree`] | no token delegated from a revoked one survives it |
//! | end a task | [`Backend::complete_task`] | every token of the task ends at one instant |
//! | find or create an approval | `Backend::request_approval` (feature `approval`) | one pending approval per binding, however many ask at once |
//! | decide an approval | `Backend::decide_approval` | a decision is made once |
//! | spend an approval | `Backend::consume_approval` | an approval of N uses admits N requests |
//! | register a client | `Backend::insert_client` (feature `oauth`) | open registration stays under its cap |
//! | redeem a code | `Backend::redeem_code` | a code is redeemed once; a replay is seen |
//! | rotate a refresh token | `Backend::rotate_refresh` | a refresh token is used once; a reuse is seen |
//! | connect a client | `Backend::connect` | one connection (one agent) per person and client |
//! | answer a device | `Backend::decide_device` | a device authorization is answered once |
//! | poll a device code | `Backend::poll_device` | redeemed once, a replay seen; a poll too soon slows the device down for good |
//! | take a callback state | `Backend::take_callback_state` (feature `callback`) | a `state` is accepted once; a replay is seen |
//! | keep a provider token | `Backend::put_provider_token` | one token per agent and provider |
//!
//! # Required and provided
//!
//! Agents, tokens and the request path are required. Everything else has a provided method
//! that answers [`StoreError::Unsupported`] (or an empty list, for a read) until a backend
//! overrides it: rotation, delegation subtrees and tasks, purging, grants, approvals, the
//! OAuth records, the callback receiver's records and the audit trail. The conformance suite (the `testing` module, feature `testing`) has a section for each, so a backend
//! proves what it implements.
//!
//! # Times
//!
//! Every time a backend stores is given to it, already truncated to the microsecond: a
//! backend never reads a clock, so a store's [`StoreConfig`](super::StoreConfig) clock rules
//! everywhere.

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditFilter};
use crate::error::{AuditError, ResolveError, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::SettleFuture;
use crate::store::access::AccessGrant;
use crate::store::model::{Agent, TokenInfo};
use crate::token::TokenHash;

#[cfg(feature = "approval")]
use crate::approval::{Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest};
#[cfg(feature = "approval")]
use crate::approval::{ApprovalStatus, Requested};
#[cfg(feature = "oauth")]
use crate::oauth::{
    AuthorizationCode, Client, Connection, DeviceAuthorization, DevicePoll, FamilyId, Polled,
    Redemption, RefreshRotation, RefreshToken,
};

#[cfg(feature = "callback")]
use crate::oauth::callback::{CallbackState, ProviderToken, StateTaken};

mod record;
mod step;

pub use record::{FoundToken, Reservation, StoredToken, Uses};
pub use step::{AgentChange, AgentFilter, GrantFilter, OneTask, Rotated, Rotation};

/// A future that is pending once (waking itself at once), so that a loop awaiting it lets the
/// runtime run other tasks between its turns.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Where a store keeps its records: the one trait a store of your own implements (see the
/// [module docs](self) and the [store docs](super) for a complete one over `HashMap`s).
///
/// Errors: a backend that cannot reach its storage answers [`StoreError::Unavailable`] (or
/// [`ResolveError::Unavailable`] on the request path); what it is asked to find and does not
/// hold is `Ok(None)` (or an empty list), except where a method names an error.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// What [`Backend::find`] returns: [`FoundToken`], or a type of the backend's own.
    type Record: StoredToken + 'static;

    // ---- Agents --------------------------------------------------------------------------

    /// Stores a new agent. [`Conflict::Slug`](crate::error::Conflict::Slug) if another agent
    /// has its slug; [`NotFound::Agent`](crate::error::NotFound::Agent) if it names a parent
    /// that is gone.
    async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError>;

    /// The agent with this id.
    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError>;

    /// The agent with this slug. The default looks through every agent; a backend with an
    /// index on slugs answers from it.
    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let agents = self.agents(&AgentFilter::All).await?;
        Ok(agents.into_iter().find(|agent| &*agent.slug == slug))
    }

    /// The agents `filter` selects, by slug.
    async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError>;

    /// Applies `change` to the agent `id`: the agent as it is after, `None` if there is none.
    async fn update_agent(
        &self,
        id: &AgentId,
        change: &AgentChange,
    ) -> Result<Option<Agent>, StoreError>;

    /// Deletes the agent, its thread-scoped children, and every token and grant of either
    /// (and the tokens delegated from those tokens), in one step; `false` if there was none.
    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError>;

    // ---- Tokens --------------------------------------------------------------------------

    /// Stores a new token under `hash`. [`Conflict::Token`](crate::error::Conflict::Token) if
    /// the hash is stored already; [`NotFound::Agent`](crate::error::NotFound::Agent) if its
    /// agent is gone. With `one_task`, atomically with the insert: the task ids of the agent's
    /// live tokens ([`OneTask::is_live`]) are read and [`OneTask::check`]ed, and nothing is
    /// stored if it refuses (two concurrent inserts for one agent take turns).
    async fn insert_token(
        &self,
        hash: &TokenHash,
        token: &TokenInfo,
        one_task: Option<&OneTask>,
    ) -> Result<(), StoreError>;

    /// Every token of `agent`, oldest first (by `created_at`, then id).
    async fn tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError>;

    /// The token `token` of `agent`; `None` if there is none, or it is another agent's.
    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let tokens = self.tokens(agent).await?;
        Ok(tokens.into_iter().find(|info| info.id == *token))
    }

    /// Marks the token `token` of `agent` revoked at `at`, unless it was already (then it keeps
    /// its first instant): the token as it is after; `None` if there is no such token.
    async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<Option<TokenInfo>, StoreError>;

    /// Revokes every token of `agent` not revoked yet, at `at`: how many.
    async fn revoke_agent_tokens(
        &self,
        agent: &AgentId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for info in self.tokens(agent).await? {
            if info.revoked_at.is_none() && self.revoke_token(agent, &info.id, at).await?.is_some()
            {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Revokes, at `at`, the token `token` of `agent` and every token delegated from it, below
    /// and below that, in one step: how many were revoked now (those revoked already are not
    /// counted). `0` if the token is not `agent`'s.
    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let _ = (agent, token, at);
        Err(StoreError::Unsupported("revoking delegation trees"))
    }

    /// Marks completed at `at` every live token (not revoked, not completed, unexpired at
    /// `at`) of `owner`'s agents with task id `task`, and every live token delegated from one,
    /// in one step: how many.
    async fn complete_task(
        &self,
        owner: &UserId,
        task: &str,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let _ = (owner, task, at);
        Err(StoreError::Unsupported("completing tasks"))
    }

    /// Carries out `rotation` in one step: if the old token is still live at
    /// [`Rotation::now`] with [`Rotation::uses_read`] uses left, sets its expiry and
    /// revocation as the rotation says and its uses left to none (when it has a limit), stores
    /// the new token and sets the agent's `last_rotated_at`; otherwise changes nothing.
    async fn rotate_token(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        let _ = rotation;
        Err(StoreError::Unsupported("rotating tokens"))
    }

    /// Deletes every token revoked, completed or expired before `before`, and every token
    /// delegated from one: how many, the delegated ones included.
    async fn purge_tokens(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let _ = before;
        Err(StoreError::Unsupported("purging tokens"))
    }

    // ---- The request path -----------------------------------------------------------------

    /// The token stored under `hash`, with its agent, the agent's parent and (for a delegated
    /// token) its chain.
    async fn find(&self, hash: &TokenHash) -> Result<Option<Self::Record>, ResolveError>;

    /// [`Backend::find`] at once, when the record is at hand without waiting; `None` when it
    /// is not (the default).
    fn find_now(&self, hash: &TokenHash) -> Option<Result<Option<Self::Record>, ResolveError>> {
        let _ = hash;
        None
    }

    /// Tries once to reserve one use, atomically: of N concurrent requests for the last use,
    /// one gets it. Never waits: when every use left is in flight it answers
    /// [`Reservation::InFlight`]. For a delegated record, one use of every use-limited link
    /// ([`StoredToken::delegator`] and the token itself), all or none: if one link has none,
    /// those reserved are given back and the answer is that link's.
    async fn reserve(&self, record: &Self::Record) -> Result<Reservation, ResolveError>;

    /// [`Backend::reserve`] at once, when that needs no I/O; `None` when it does (the default).
    fn reserve_now(&self, record: &Self::Record) -> Option<Result<Reservation, ResolveError>> {
        let _ = record;
        None
    }

    /// Waits until a use of the token in flight may have settled: at once if one already has,
    /// else until a settle wakes it or a short pause passes (`attempt` counts the waits of this
    /// request, for a backend that backs off). The default only yields to the runtime once, so
    /// a waiting request polls: a backend that can wait (a notification, a timer) should.
    async fn settled(&self, record: &Self::Record, attempt: u32) {
        let _ = (record, attempt);
        YieldOnce(false).await;
    }

    /// Settles a use the request under `token` reserved, at `now`: `spent`, or given back for
    /// another request; every use-limited link of the token's chain alike. When a spent use is
    /// the last of an `expires_on_completion` token, the token expires at `now`. At once, or
    /// through the returned write (see [`TokenResolver::settle_use`](crate::TokenResolver::settle_use)
    /// for what dropping it must do).
    fn settle(&self, token: &TokenId, spent: bool, now: OffsetDateTime) -> Option<SettleFuture>;

    /// Records that a request used the token now (Unix nanoseconds): its `last_used_at` and
    /// its agent's, coalesced by the backend. The default records nothing.
    fn touch(&self, token: &TokenId, now_nanos: i128) {
        let _ = (token, now_nanos);
    }

    /// [`Backend::touch`] for a record the request just read. The default touches its id.
    fn record_use(&self, record: &Self::Record, now_nanos: i128) {
        self.touch(&record.info().id, now_nanos);
    }

    // ---- Grants --------------------------------------------------------------------------

    /// Stores `grant`, replacing the user's earlier grant on the agent.
    /// [`NotFound::Agent`](crate::error::NotFound::Agent) if the agent is gone.
    async fn put_grant(&self, grant: &AccessGrant) -> Result<(), StoreError> {
        let _ = grant;
        Err(StoreError::Unsupported("grants"))
    }

    /// Deletes the user's grant on the agent; `false` if there was none.
    async fn delete_grant(&self, agent: &AgentId, user: &UserId) -> Result<bool, StoreError> {
        let _ = (agent, user);
        Err(StoreError::Unsupported("grants"))
    }

    /// The grants `filter` selects, by agent then user. The default has none.
    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<AccessGrant>, StoreError> {
        let _ = filter;
        Ok(Vec::new())
    }

    // ---- OAuth (feature `oauth`) ---------------------------------------------------------

    /// Stores a new client, unless it is a registered one and `limit` live registered clients
    /// are kept already at `now` (then `false`, nothing stored): the cap on open registration,
    /// counted and applied in one step. [`Conflict::Client`](crate::error::Conflict::Client)
    /// if the id is taken; [`NotFound::Agent`](crate::error::NotFound::Agent) if an agent's
    /// client names an agent that is gone.
    #[cfg(feature = "oauth")]
    async fn insert_client(
        &self,
        client: &Client,
        limit: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let _ = (client, limit, now);
        Err(StoreError::Unsupported("oauth"))
    }

    /// The client with this id.
    #[cfg(feature = "oauth")]
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Every client, by id.
    #[cfg(feature = "oauth")]
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        Ok(Vec::new())
    }

    /// Replaces the stored record of `client.id` (redirect URIs, secret, last use, expiry,
    /// revocation); `false` if there is none.
    #[cfg(feature = "oauth")]
    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        let _ = client;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Deletes a client with its codes, device authorizations, refresh tokens and connections;
    /// `false` if there was none.
    #[cfg(feature = "oauth")]
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Stores a new authorization code. [`NotFound::Client`](crate::error::NotFound::Client)
    /// or [`NotFound::Agent`](crate::error::NotFound::Agent) if its client or agent is gone,
    /// [`Conflict::Token`](crate::error::Conflict::Token) if its hash is stored already.
    #[cfg(feature = "oauth")]
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let _ = code;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Redeems the code with this hash at `now` for `family`, if it was not redeemed, in one
    /// step: sets its `redeemed_at` and `family` together ([`Redemption::Redeemed`], the code
    /// as it was). Else marks it replayed — `replayed_at`, kept from the first replay — and
    /// answers it as it now is ([`Redemption::Replayed`]). Of two redemptions at once, on any
    /// nodes, one is `Redeemed` and the other `Replayed`; a replay always finds the family,
    /// and the redeemer that reads the code after issuing ([`Backend::code`]) sees any replay
    /// that came before its read. Expiry is the store's to judge, on what this returns.
    #[cfg(feature = "oauth")]
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Redemption, StoreError> {
        let _ = (hash, family, now);
        Err(StoreError::Unsupported("oauth"))
    }

    /// The code with this hash, as it stands.
    #[cfg(feature = "oauth")]
    async fn code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        let _ = hash;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Stores a new refresh token (the first of its family); errors as
    /// [`Backend::insert_code`].
    #[cfg(feature = "oauth")]
    async fn insert_refresh(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let _ = token;
        Err(StoreError::Unsupported("oauth"))
    }

    /// The refresh token with this hash.
    #[cfg(feature = "oauth")]
    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError> {
        let _ = hash;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Marks the refresh token `old` rotated at `now` and stores `new` in its place, in one
    /// step, if `old` is neither rotated nor revoked ([`RefreshRotation::Rotated`]); else
    /// stores nothing ([`RefreshRotation::Reused`]). Of two rotations of one token at once, on
    /// any nodes, one succeeds.
    #[cfg(feature = "oauth")]
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let _ = (old, new, now);
        Err(StoreError::Unsupported("oauth"))
    }

    /// Marks every refresh token of `family` revoked at `now` (those already revoked keep
    /// their time) and answers the access tokens the family issued, for the store to revoke.
    #[cfg(feature = "oauth")]
    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let _ = (family, now);
        Err(StoreError::Unsupported("oauth"))
    }

    /// The connection of `user` to `client`.
    #[cfg(feature = "oauth")]
    async fn connection(
        &self,
        user: &UserId,
        client: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let _ = (user, client);
        Err(StoreError::Unsupported("oauth"))
    }

    /// Stores `connection` unless its user is connected to its client already, in one step;
    /// either way answers the connection that stands (one per person and client, however
    /// many consent at once). [`NotFound::Client`](crate::error::NotFound::Client) or
    /// [`NotFound::Agent`](crate::error::NotFound::Agent) if its client or agent is gone.
    #[cfg(feature = "oauth")]
    async fn connect(&self, connection: &Connection) -> Result<Connection, StoreError> {
        let _ = connection;
        Err(StoreError::Unsupported("oauth"))
    }

    /// The connections of `user`, or every connection, by user then client.
    #[cfg(feature = "oauth")]
    async fn connections(&self, user: Option<&UserId>) -> Result<Vec<Connection>, StoreError> {
        let _ = user;
        Ok(Vec::new())
    }

    /// Deletes the connection of `user` to `client`; `false` if there was none.
    #[cfg(feature = "oauth")]
    async fn delete_connection(&self, user: &UserId, client: &str) -> Result<bool, StoreError> {
        let _ = (user, client);
        Err(StoreError::Unsupported("oauth"))
    }

    /// Stores a new device authorization. [`Conflict::Token`](crate::error::Conflict::Token)
    /// if its device code's or its user code's hash is stored already;
    /// [`NotFound::Client`](crate::error::NotFound::Client) if its client is gone.
    #[cfg(feature = "oauth")]
    async fn insert_device(&self, device: &DeviceAuthorization) -> Result<(), StoreError> {
        let _ = device;
        Err(StoreError::Unsupported("oauth"))
    }

    /// The device authorization whose device code has this hash, as it stands.
    #[cfg(feature = "oauth")]
    async fn device(&self, hash: &TokenHash) -> Result<Option<DeviceAuthorization>, StoreError> {
        let _ = hash;
        Err(StoreError::Unsupported("oauth"))
    }

    /// The device authorization whose user code has this hash.
    #[cfg(feature = "oauth")]
    async fn device_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let _ = user_code;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Stores the answer in `decided` (its status, person, agent, capabilities and instant)
    /// only if the stored request of `decided.hash` is still pending and unexpired at `now`:
    /// whether it was stored. [`NotFound::Agent`](crate::error::NotFound::Agent) if it names
    /// an agent that is gone.
    #[cfg(feature = "oauth")]
    async fn decide_device(
        &self,
        decided: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let _ = (decided, now);
        Err(StoreError::Unsupported("oauth"))
    }

    /// One poll, in one step: reads the request of `poll.hash`, stores what
    /// [`DevicePoll::apply`] says in its place and answers what it answers
    /// ([`Polled::Unknown`] when there is none). Of two polls at once, on any nodes, the
    /// second sees what the first stored: one redeems, the other is a replay.
    #[cfg(feature = "oauth")]
    async fn poll_device(&self, poll: &DevicePoll) -> Result<Polled, StoreError> {
        let _ = poll;
        Err(StoreError::Unsupported("oauth"))
    }

    /// Deletes codes, device authorizations and refresh tokens that lapsed before `before`,
    /// and registered clients that lapsed unused before it; how many records went.
    #[cfg(feature = "oauth")]
    async fn purge_oauth(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let _ = before;
        Err(StoreError::Unsupported("oauth"))
    }

    // ---- The callback receiver (feature `callback`) -------------------------------------

    /// Stores a pending authorization. [`Conflict::Token`](crate::error::Conflict::Token) if
    /// its hash is stored already; [`NotFound::Agent`](crate::error::NotFound::Agent) if its
    /// agent is gone.
    #[cfg(feature = "callback")]
    async fn insert_callback_state(&self, state: &CallbackState) -> Result<(), StoreError> {
        let _ = state;
        Err(StoreError::Unsupported("the callback receiver"))
    }

    /// Takes the pending authorization whose `state` has this hash, in one step: sets its
    /// `used_at` to `now` if it was unused ([`StateTaken::Taken`], as it was); else answers
    /// it as it stands ([`StateTaken::Replayed`]). Of two takings at once, on any nodes, one
    /// is `Taken`. Expiry and the session are the receiver's to judge.
    #[cfg(feature = "callback")]
    async fn take_callback_state(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<StateTaken, StoreError> {
        let _ = (hash, now);
        Err(StoreError::Unsupported("the callback receiver"))
    }

    /// Deletes the pending authorizations that lapsed before `before`: how many.
    #[cfg(feature = "callback")]
    async fn purge_callback_states(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let _ = before;
        Err(StoreError::Unsupported("the callback receiver"))
    }

    /// Stores `token` in place of the one of its agent and provider, if any, in one step (one
    /// per agent and provider, however many connect at once).
    /// [`NotFound::Agent`](crate::error::NotFound::Agent) if its agent is gone;
    /// [`Conflict::Token`](crate::error::Conflict::Token) if its id is another's.
    #[cfg(feature = "callback")]
    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), StoreError> {
        let _ = token;
        Err(StoreError::Unsupported("the callback receiver"))
    }

    /// The provider token with this id.
    #[cfg(feature = "callback")]
    async fn provider_token(&self, id: &str) -> Result<Option<ProviderToken>, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("the callback receiver"))
    }

    /// The provider tokens of `agent`, or every one, by agent then provider.
    #[cfg(feature = "callback")]
    async fn provider_tokens(
        &self,
        agent: Option<&AgentId>,
    ) -> Result<Vec<ProviderToken>, StoreError> {
        let _ = agent;
        Ok(Vec::new())
    }

    /// Deletes the provider token with this id; `false` if there was none.
    #[cfg(feature = "callback")]
    async fn delete_provider_token(&self, id: &str) -> Result<bool, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("the callback receiver"))
    }

    // ---- Approvals (feature `approval`) --------------------------------------------------

    /// Stores a new approval.
    #[cfg(feature = "approval")]
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        let _ = approval;
        Err(StoreError::Unsupported("approvals"))
    }

    /// The approval with this id.
    #[cfg(feature = "approval")]
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        let _ = id;
        Ok(None)
    }

    /// The approvals passing `filter` at `now` ([`ApprovalFilter::matches`]), newest first
    /// (by `created_at`, then id, the greatest first), at most [`ApprovalFilter::last`].
    #[cfg(feature = "approval")]
    async fn approvals(
        &self,
        filter: &ApprovalFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, StoreError> {
        let _ = (filter, now);
        Ok(Vec::new())
    }

    /// Finds or creates an approval for `request`, in one step with a lock on the request's
    /// agent: spends a use of the oldest approved approval of its binding that is usable at
    /// [`ApprovalRequest::now`] (as [`Backend::consume_approval`]) and answers
    /// [`Requested::Approved`] with it; else reads the approvals of the binding and the
    /// expiries of the agent's pending approvals (when [`ApprovalRequest::counts_pending`]),
    /// and answers what [`ApprovalRequest::decide`] says, storing the new approval first when
    /// it says [`Requested::Created`].
    #[cfg(feature = "approval")]
    async fn request_approval(&self, request: &ApprovalRequest) -> Result<Requested, StoreError> {
        let _ = request;
        Err(StoreError::Unsupported("approvals"))
    }

    /// Stores the decision in `decided` (its status, decider, instant, uses and expiry) only if
    /// the stored approval is still `from` and unexpired at `now`: whether it was stored.
    #[cfg(feature = "approval")]
    async fn decide_approval(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let _ = (decided, from, now);
        Err(StoreError::Unsupported("approvals"))
    }

    /// Spends one use of the oldest (by `created_at`, then id) approved approval of `binding`
    /// with uses left and unexpired at `now`, atomically, marking it used when it was its last:
    /// the approval after; `None` if there is none.
    #[cfg(feature = "approval")]
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Result<Option<Approval>, StoreError> {
        let _ = (binding, now);
        Ok(None)
    }

    /// Deletes the approvals that expired before `before`: how many.
    #[cfg(feature = "approval")]
    async fn purge_approvals(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let _ = before;
        Err(StoreError::Unsupported("approvals"))
    }

    // ---- The audit trail -----------------------------------------------------------------

    /// Stores a batch of events, in order.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        let _ = events;
        Err(AuditError::Unavailable(
            "this store keeps no audit trail".into(),
        ))
    }

    /// The events passing `filter`, oldest first (those of one instant in the order they were
    /// stored), the newest [`AuditFilter::last`] of them.
    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        let _ = filter;
        Err(AuditError::Unavailable(
            "this store keeps no audit trail".into(),
        ))
    }
}
