//! What a database error means to the store: a management error, an unavailable resolution,
//! a violated constraint, or a statement to try again after a pause.

use std::time::Duration;

use crate::error::{ResolveError, StoreError};

/// A database error, as the management API reports it.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    // PostgreSQL cannot hold a NUL byte in text (SQLSTATE 22021): the input is bad, the
    // database is fine — a 422, not a 503 that pages an operator.
    if let sqlx::Error::Database(db) = &error {
        if db.code().as_deref() == Some("22021") {
            return StoreError::invalid("text cannot contain a NUL byte");
        }
    }
    StoreError::Unavailable(Box::new(error))
}

/// A database error on the request path: never admission.
pub(crate) fn resolve_error(error: sqlx::Error) -> ResolveError {
    ResolveError::Unavailable(Box::new(error))
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Whether the database undid the statement and it may simply run again: PostgreSQL's
/// deadlock, serialization failure, lock not available or a cancelled (timed-out) statement;
/// SQLite's busy or locked database.
pub(super) fn retriable(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| matches!(&*code, "40P01" | "40001" | "55P03" | "57014" | "5" | "6"))
}

/// Another node may hold the use: poll, backing off from 2 ms to 50 ms.
pub(super) async fn pause(attempt: u32) {
    let pause = Duration::from_millis(2).saturating_mul(1 << attempt.min(5));
    tokio::time::sleep(pause.min(Duration::from_millis(50))).await;
}
