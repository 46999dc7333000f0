//! OAuth records held in memory (feature `oauth`): clients, codes, device authorizations,
//! refresh families and connections in maps behind one lock, so each step — registering under
//! the cap, redeeming a code, answering or polling a device, rotating a refresh token,
//! connecting — is atomic.
//!
//! A step that names an agent runs with the agents' lock held for reading (the caller passes
//! the [`State`]), and deleting an agent clears its records here with that lock held for
//! writing: the references hold as the SQL stores' foreign keys hold them. No verdict reads
//! these records, so changing them does not move the store's revision.
//!
//! Every record is indexed by the agent and the client it names, so that deleting an agent or
//! a client touches what referred to it only, not every record kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::entry::DigestHasher;
use super::state::State;
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::{
    AuthorizationCode, Client, ClientKind, Connection, DeviceAuthorization, DevicePoll,
    DeviceStatus, FamilyId, Polled, Redemption, RefreshRotation, RefreshToken,
};
use crate::principal::{AgentId, TokenId, UserId};
use crate::token::TokenHash;

type ByHash<T> = HashMap<TokenHash, T, BuildHasherDefault<DigestHasher>>;

/// One record, as the indexes name it.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Ref {
    Client(String),
    Code(TokenHash),
    Device(TokenHash),
    Refresh(TokenHash),
    Connection(UserId, String),
}

#[derive(Default)]
struct Records {
    /// The records that name each agent, and each client: what its deletion takes with it.
    of_agent: HashMap<AgentId, HashSet<Ref>>,
    of_client: HashMap<String, HashSet<Ref>>,
    clients: BTreeMap<String, Client>,
    codes: ByHash<AuthorizationCode>,
    devices: ByHash<DeviceAuthorization>,
    /// Each device authorization's user code hash, to its device code hash.
    user_codes: ByHash<TokenHash>,
    refresh: ByHash<RefreshToken>,
    /// Each family's refresh tokens, oldest first.
    families: HashMap<FamilyId, Vec<TokenHash>>,
    connections: BTreeMap<(UserId, String), Connection>,
}

impl Records {
    fn client(&self, id: &str) -> Result<&Client, StoreError> {
        self.clients
            .get(id)
            .ok_or_else(|| NotFound::Client(id.to_owned()).into())
    }

    /// Files `record` under the agent and the client it names.
    fn index(&mut self, record: Ref, agent: Option<&AgentId>, client: Option<&str>) {
        if let Some(agent) = agent {
            (self.of_agent.entry(agent.clone()).or_default()).insert(record.clone());
        }
        if let Some(client) = client {
            (self.of_client.entry(client.to_owned()).or_default()).insert(record);
        }
    }

    fn unindex(&mut self, record: &Ref, agent: Option<&AgentId>, client: Option<&str>) {
        if let Some(agent) = agent {
            if let Some(refs) = self.of_agent.get_mut(agent) {
                refs.remove(record);
                if refs.is_empty() {
                    self.of_agent.remove(agent);
                }
            }
        }
        if let Some(client) = client {
            if let Some(refs) = self.of_client.get_mut(client) {
                refs.remove(record);
                if refs.is_empty() {
                    self.of_client.remove(client);
                }
            }
        }
    }

    /// Removes one record, a client with everything that names it.
    fn remove(&mut self, record: &Ref) {
        match record {
            Ref::Client(id) => {
                self.remove_client(id);
            }
            Ref::Code(hash) => {
                if let Some(code) = self.codes.remove(hash) {
                    self.unindex(record, Some(&code.agent), Some(&code.client_id));
                }
            }
            Ref::Device(hash) => {
                if let Some(device) = self.devices.remove(hash) {
                    self.user_codes.remove(&device.user_code);
                    self.unindex(record, device.agent.as_ref(), Some(&device.client_id));
                }
            }
            Ref::Refresh(hash) => self.remove_refresh(hash),
            Ref::Connection(user, client) => {
                let key = (user.clone(), client.clone());
                if let Some(connection) = self.connections.remove(&key) {
                    self.unindex(record, Some(&connection.agent), Some(client.as_str()));
                }
            }
        }
    }

    fn remove_refresh(&mut self, hash: &TokenHash) {
        if let Some(token) = self.refresh.remove(hash) {
            if let Some(members) = self.families.get_mut(&token.family) {
                members.retain(|member| member != hash);
                if members.is_empty() {
                    self.families.remove(&token.family);
                }
            }
            let record = Ref::Refresh(*hash);
            self.unindex(&record, Some(&token.agent), Some(&token.client_id));
        }
    }

    fn insert_refresh(&mut self, token: &RefreshToken) {
        self.families
            .entry(token.family.clone())
            .or_default()
            .push(token.hash);
        self.refresh.insert(token.hash, token.clone());
        self.index(
            Ref::Refresh(token.hash),
            Some(&token.agent),
            Some(&token.client_id),
        );
    }

    /// Removes the device authorizations `doomed` picks: how many.
    fn remove_devices(&mut self, doomed: impl Fn(&DeviceAuthorization) -> bool) -> usize {
        let gone: Vec<TokenHash> = (self.devices.values())
            .filter(|device| doomed(device))
            .map(|device| device.hash)
            .collect();
        for hash in &gone {
            self.remove(&Ref::Device(*hash));
        }
        gone.len()
    }

    /// Removes every record that names `agent` (its clients with theirs): what its deletion
    /// takes with it.
    fn forget_agent(&mut self, agent: &AgentId) {
        for record in self.of_agent.remove(agent).unwrap_or_default() {
            self.remove(&record);
        }
    }

    fn remove_client(&mut self, id: &str) -> bool {
        let Some(client) = self.clients.remove(id) else {
            return false;
        };
        let record = Ref::Client(id.to_owned());
        self.unindex(&record, client.agent(), None);
        for record in self.of_client.remove(id).unwrap_or_default() {
            self.remove(&record);
        }
        true
    }
}

/// Every OAuth record of a memory store.
#[derive(Default)]
pub(super) struct MemoryOAuth {
    records: Mutex<Records>,
}

/// `Ok` if the agent is stored.
fn agent_exists(state: &State, agent: &AgentId) -> Result<(), StoreError> {
    state.agent(agent).map(|_| ())
}

impl MemoryOAuth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `client` unless the cap on registered clients is reached: counted and applied
    /// under the lock, so concurrent registrations never pass it together.
    pub(super) fn insert_client(
        &self,
        state: &State,
        client: &Client,
        limit: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if let Some(agent) = client.agent() {
            agent_exists(state, agent)?;
        }
        let mut records = self.lock();
        if let (ClientKind::Registered, Some(limit)) = (&client.kind, limit) {
            let live = (records.clients.values())
                .filter(|c| c.kind == ClientKind::Registered && c.is_live_at(now))
                .count();
            if u64::try_from(live).unwrap_or(u64::MAX) >= limit {
                return Ok(false);
            }
        }
        if records.clients.contains_key(&client.id) {
            return Err(Conflict::Client(client.id.clone()).into());
        }
        records.clients.insert(client.id.clone(), client.clone());
        records.index(Ref::Client(client.id.clone()), client.agent(), None);
        Ok(true)
    }

    pub(super) fn client(&self, id: &str) -> Option<Client> {
        self.lock().clients.get(id).cloned()
    }

    pub(super) fn clients(&self) -> Vec<Client> {
        self.lock().clients.values().cloned().collect()
    }

    /// Replaces what may change of a stored client; its id, kind and creation stay.
    pub(super) fn update_client(&self, client: &Client) -> bool {
        let mut records = self.lock();
        let Some(stored) = records.clients.get_mut(&client.id) else {
            return false;
        };
        *stored = Client {
            kind: stored.kind.clone(),
            created_at: stored.created_at,
            ..client.clone()
        };
        true
    }

    pub(super) fn delete_client(&self, id: &str) -> bool {
        self.lock().remove_client(id)
    }

    pub(super) fn insert_code(
        &self,
        state: &State,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        agent_exists(state, &code.agent)?;
        let mut records = self.lock();
        records.client(&code.client_id)?;
        if records.codes.contains_key(&code.hash) {
            return Err(Conflict::Token.into());
        }
        records.codes.insert(code.hash, code.clone());
        records.index(
            Ref::Code(code.hash),
            Some(&code.agent),
            Some(&code.client_id),
        );
        Ok(())
    }

    /// Redeems the code for `family` unless it was, under the lock: one redemption wins, and
    /// every later one marks it replayed.
    pub(super) fn redeem_code(
        &self,
        hash: &TokenHash,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Redemption {
        let mut records = self.lock();
        let Some(code) = records.codes.get_mut(hash) else {
            return Redemption::Unknown;
        };
        if code.redeemed_at.is_some() {
            code.replayed_at.get_or_insert(now);
            return Redemption::Replayed(code.clone());
        }
        let found = code.clone();
        code.redeemed_at = Some(now);
        code.family = Some(family.clone());
        Redemption::Redeemed(found)
    }

    pub(super) fn code(&self, hash: &TokenHash) -> Option<AuthorizationCode> {
        self.lock().codes.get(hash).cloned()
    }

    pub(super) fn insert_device(&self, device: &DeviceAuthorization) -> Result<(), StoreError> {
        let mut records = self.lock();
        records.client(&device.client_id)?;
        if records.devices.contains_key(&device.hash)
            || records.user_codes.contains_key(&device.user_code)
        {
            return Err(Conflict::Token.into());
        }
        records.user_codes.insert(device.user_code, device.hash);
        records.devices.insert(device.hash, device.clone());
        let record = Ref::Device(device.hash);
        records.index(record, device.agent.as_ref(), Some(&device.client_id));
        Ok(())
    }

    pub(super) fn device(&self, hash: &TokenHash) -> Option<DeviceAuthorization> {
        self.lock().devices.get(hash).cloned()
    }

    pub(super) fn device_by_user_code(&self, user_code: &TokenHash) -> Option<DeviceAuthorization> {
        let records = self.lock();
        let hash = records.user_codes.get(user_code)?;
        records.devices.get(hash).cloned()
    }

    /// Stores the answer if the request is still pending, under the lock: one answer wins.
    pub(super) fn decide_device(
        &self,
        state: &State,
        decided: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if let Some(agent) = &decided.agent {
            agent_exists(state, agent)?;
        }
        let mut records = self.lock();
        let Some(stored) = records.devices.get_mut(&decided.hash) else {
            return Ok(false);
        };
        if !stored.is_pending_at(now) || decided.status == DeviceStatus::Pending {
            return Ok(false);
        }
        let before = stored.agent.clone();
        stored.status = decided.status;
        stored.user = decided.user.clone();
        stored.agent = decided.agent.clone();
        stored.capabilities = decided.capabilities.clone();
        stored.decided_at = decided.decided_at;
        // The agent chosen in the answer names the request from now on.
        let record = Ref::Device(decided.hash);
        records.unindex(&record, before.as_ref(), None);
        records.index(record, decided.agent.as_ref(), None);
        Ok(true)
    }

    /// Applies the poll's rules to the stored request and stores the result, under the lock.
    pub(super) fn poll_device(&self, poll: &DevicePoll) -> Polled {
        let mut records = self.lock();
        let Some(stored) = records.devices.get_mut(&poll.hash) else {
            return Polled::Unknown;
        };
        let (answer, changed) = poll.apply(stored);
        if let Some(changed) = changed {
            *stored = changed;
        }
        answer
    }

    pub(super) fn insert_refresh(
        &self,
        state: &State,
        token: &RefreshToken,
    ) -> Result<(), StoreError> {
        agent_exists(state, &token.agent)?;
        let mut records = self.lock();
        records.client(&token.client_id)?;
        if records.refresh.contains_key(&token.hash) {
            return Err(Conflict::Token.into());
        }
        records.insert_refresh(token);
        Ok(())
    }

    pub(super) fn refresh_token(&self, hash: &TokenHash) -> Option<RefreshToken> {
        self.lock().refresh.get(hash).cloned()
    }

    /// Marks `old` rotated and stores `new`, under the lock: one rotation wins.
    pub(super) fn rotate_refresh(
        &self,
        state: &State,
        old: &TokenHash,
        new: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let mut records = self.lock();
        let Some(found) = records.refresh.get(old).cloned() else {
            return Ok(RefreshRotation::Unknown);
        };
        if found.rotated_at.is_some() || found.revoked_at.is_some() {
            return Ok(RefreshRotation::Reused(found));
        }
        agent_exists(state, &new.agent)?;
        records.client(&new.client_id)?;
        if records.refresh.contains_key(&new.hash) {
            return Err(Conflict::Token.into());
        }
        if let Some(stored) = records.refresh.get_mut(old) {
            stored.rotated_at = Some(now);
        }
        records.insert_refresh(new);
        Ok(RefreshRotation::Rotated(found))
    }

    /// Marks the family revoked (a member revoked before keeps its instant): the access tokens
    /// its members were issued with, oldest first.
    pub(super) fn revoke_family(&self, family: &FamilyId, now: OffsetDateTime) -> Vec<TokenId> {
        let mut records = self.lock();
        let members = records.families.get(family).cloned().unwrap_or_default();
        let mut issued: Vec<(OffsetDateTime, TokenId)> = Vec::new();
        for hash in &members {
            if let Some(token) = records.refresh.get_mut(hash) {
                token.revoked_at.get_or_insert(now);
                issued.push((token.created_at, token.access_token.clone()));
            }
        }
        issued.sort();
        let mut ids: Vec<TokenId> = issued.into_iter().map(|(_, id)| id).collect();
        // Two members may share an access token only if the store handed them one: name it once.
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }

    pub(super) fn connection(&self, user: &UserId, client: &str) -> Option<Connection> {
        let key = (user.clone(), client.to_owned());
        self.lock().connections.get(&key).cloned()
    }

    /// The connection that stands for the user and client, `connection` if none did: under
    /// the lock, so concurrent consents make one.
    pub(super) fn connect(
        &self,
        state: &State,
        connection: &Connection,
    ) -> Result<Connection, StoreError> {
        agent_exists(state, &connection.agent)?;
        let mut records = self.lock();
        records.client(&connection.client_id)?;
        let key = (connection.user.clone(), connection.client_id.clone());
        if let Some(standing) = records.connections.get(&key) {
            return Ok(standing.clone());
        }
        records.connections.insert(key, connection.clone());
        let record = Ref::Connection(connection.user.clone(), connection.client_id.clone());
        records.index(record, Some(&connection.agent), Some(&connection.client_id));
        Ok(connection.clone())
    }

    pub(super) fn connections(&self, user: Option<&UserId>) -> Vec<Connection> {
        let records = self.lock();
        match user {
            // Keyed by user first: the user's range, from their first key on.
            Some(user) => (records.connections.range((user.clone(), String::new())..))
                .take_while(|((of, _), _)| of == user)
                .map(|(_, c)| c.clone())
                .collect(),
            None => records.connections.values().cloned().collect(),
        }
    }

    pub(super) fn delete_connection(&self, user: &UserId, client: &str) -> bool {
        let mut records = self.lock();
        let key = (user.clone(), client.to_owned());
        let found = records.connections.contains_key(&key);
        records.remove(&Ref::Connection(user.clone(), client.to_owned()));
        found
    }

    /// What referred to the agents `gone`, which were just deleted: their clients (with what
    /// those held), codes, refresh tokens and connections.
    pub(super) fn forget_agents(&self, gone: &[AgentId]) {
        let mut records = self.lock();
        for agent in gone {
            records.forget_agent(agent);
        }
    }

    /// Deletes the codes, device authorizations and refresh tokens that lapsed before
    /// `before`, then the registered clients that did (with what they still held, uncounted):
    /// how many of the first four.
    pub(super) fn purge(&self, before: OffsetDateTime) -> usize {
        let mut records = self.lock();
        let codes: Vec<TokenHash> = (records.codes.values())
            .filter(|code| code.expires_at < before)
            .map(|code| code.hash)
            .collect();
        for hash in &codes {
            records.remove(&Ref::Code(*hash));
        }
        let mut purged = codes.len();
        purged += records.remove_devices(|device| device.expires_at < before);
        let lapsed: Vec<TokenHash> = (records.refresh.values())
            .filter(|t| refresh_lapsed(t, before))
            .map(|t| t.hash)
            .collect();
        for hash in &lapsed {
            records.remove_refresh(hash);
        }
        purged += lapsed.len();
        let clients: Vec<String> = (records.clients.values())
            .filter(|c| c.kind == ClientKind::Registered)
            .filter(|c| c.expires_at.is_some_and(|at| at < before))
            .map(|c| c.id.clone())
            .collect();
        for id in &clients {
            records.remove_client(id);
        }
        purged + clients.len()
    }
}

/// Whether a refresh token is of no more use at `before`: expired, or revoked, before it. (A
/// rotated one is kept until it expires, so that its reuse is still seen.)
fn refresh_lapsed(token: &RefreshToken, before: OffsetDateTime) -> bool {
    token.expires_at.is_some_and(|at| at < before) || token.revoked_at.is_some_and(|at| at < before)
}
