//! How driver errors become store errors, and running again what PostgreSQL aborted to
//! break a deadlock.

use std::time::Duration;

use herald_core::StoreError;

/// Maps a driver error to the store's error, recognising uniqueness conflicts by their
/// SQLSTATE (23505), never by message text.
pub(crate) fn store_error(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { what },
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// Maps a driver error where no uniqueness rule is involved.
pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// How many times in all an operation runs when PostgreSQL keeps aborting it as a deadlock
/// victim or for a serialization conflict.
const TRANSIENT_TRIES: u32 = 4;

/// Runs `operation`, and runs it again when PostgreSQL aborted it to break a deadlock (40P01)
/// or for a serialization conflict (40001): an aborted transaction wrote nothing, so running
/// it again is safe. Deleting an application (its cascade locks many rows) and recording an
/// attempt (which locks the delivery, then inserts under the application) can deadlock when
/// they meet; without this the loser surfaced as a 500. Public for the store's tests only.
#[doc(hidden)]
pub async fn retry_transient<T, F, Fut>(mut operation: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match operation().await {
            Err(StoreError::Backend(error)) if tries < TRANSIENT_TRIES && is_transient(error.as_ref()) => {
                tracing::debug!(error = %error, tries, "retrying a transaction PostgreSQL aborted");
                // A short, growing pause lets the transaction that won finish first.
                tokio::time::sleep(Duration::from_millis(u64::from(tries) * 10)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Whether an error is PostgreSQL aborting a transaction that may succeed when run again.
fn is_transient(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}
