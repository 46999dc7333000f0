//! The conformance suite on the in-memory store.

mod conformance;

use std::sync::Arc;

use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};

async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(MemoryStore, std::future::Ready<()>)> {
    Some((
        MemoryStore::with_config(conformance::config(&users, &clock)),
        std::future::ready(()),
    ))
}

conformance_suite!(open);
