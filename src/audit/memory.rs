use std::sync::Mutex;

use super::{AuditError, AuditEvent, AuditFilter, AuditQuery, AuditSink};

/// Keeps the trail in memory: for tests and single-process tools.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryAuditSink {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}

#[async_trait::async_trait]
impl AuditQuery for MemoryAuditSink {
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        Ok(filter.select(events.iter()))
    }
}
