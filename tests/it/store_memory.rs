//! The conformance suite on the in-memory store.
#![cfg(feature = "testing")]

use std::sync::Arc;

use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
use tower_agent_auth::testing;

async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(MemoryStore, std::future::Ready<()>)> {
    Some((
        MemoryStore::with_config(testing::config(&users, &clock)),
        std::future::ready(()),
    ))
}

tower_agent_auth::conformance_suite!(open);
// The sections that need more than `Store`: named, since a store of another crate may
// not implement `ApprovalGate` or `DelegationStore`.
tower_agent_auth::conformance_suite!(open, [approval, delegation]);
// OAuth clients, codes, refresh families and connections (feature `oauth`).
#[cfg(feature = "oauth")]
tower_agent_auth::conformance_suite!(open, [oauth]);
// The callback receiver's records (feature `callback`).
#[cfg(feature = "callback")]
tower_agent_auth::conformance_suite!(open, [callback]);
