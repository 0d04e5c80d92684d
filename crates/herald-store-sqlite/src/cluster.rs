//! What nodes share through the store on SQLite: node heartbeats and endpoint circuit
//! breakers. Herald serves a SQLite file from one process, so the node count is 1 in practice;
//! the statements still honour the trait, so that the server has one code path.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::EndpointId;

use crate::rows::{from_micros, to_micros};
use crate::{SqliteStore, backend};

/// Upserts `node`'s row, deletes the other nodes' lapsed rows and counts the live ones, in one
/// transaction on the writer.
pub(crate) async fn heartbeat(
    store: &SqliteStore,
    node: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let now = to_micros(now);
    // IMMEDIATE: the write lock is taken at BEGIN, so waiting for the writer thread never ends
    // in a failed lock upgrade.
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO cluster_nodes (node, expires_at) VALUES (?, ?)
         ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(node)
    .bind(to_micros(expires_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    // This node's own row is kept whatever its expiry: it is alive, it is calling.
    sqlx::query("DELETE FROM cluster_nodes WHERE expires_at <= ? AND node <> ?")
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cluster_nodes WHERE node <> ?")
        .bind(node)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1))
}

pub(crate) async fn leave(store: &SqliteStore, node: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM cluster_nodes WHERE node = ?")
        .bind(node)
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Moves the circuit's end to `until` only when that is later than the stored end.
pub(crate) async fn open_circuit(
    store: &SqliteStore,
    endpoint: &EndpointId,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    let until = to_micros(until);
    sqlx::query(
        "UPDATE endpoints SET circuit_open_until = ?
         WHERE id = ? AND (circuit_open_until IS NULL OR circuit_open_until < ?)",
    )
    .bind(until)
    .bind(endpoint.as_str())
    .bind(until)
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn circuit_open_until(
    store: &SqliteStore,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let until: Option<i64> = sqlx::query_scalar(
        "SELECT circuit_open_until FROM endpoints WHERE id = ? AND circuit_open_until > ?",
    )
    .bind(endpoint.as_str())
    .bind(to_micros(now))
    .fetch_optional(&store.reader)
    .await
    .map_err(backend)?;
    until.map(from_micros).transpose()
}
