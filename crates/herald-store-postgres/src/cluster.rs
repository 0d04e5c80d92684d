//! What the nodes sharing one database know of each other on PostgreSQL: which nodes are
//! alive (heartbeats), and which endpoints' circuit breakers are open.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::EndpointId;

use crate::{PostgresStore, backend};

/// Forgets the other nodes' lapsed rows and counts the live ones. Lapsed rows are locked with
/// `SKIP LOCKED`: a row another node is refreshing or deleting at that moment is passed over,
/// never waited for, so two nodes that beat at once can't deadlock (each has locked its own
/// row first). The count reads the statement's snapshot, before the deletion, which is why it
/// filters on the expiry too.
const PRUNE_AND_COUNT_SQL: &str = "
WITH lapsed AS (
    DELETE FROM cluster_nodes WHERE node IN (
        SELECT node FROM cluster_nodes WHERE expires_at <= $1 AND node <> $2
        FOR UPDATE SKIP LOCKED)
)
SELECT COUNT(*) FROM cluster_nodes WHERE expires_at > $1 AND node <> $2";

/// Upserts `node`'s row, then prunes and counts, in one transaction. This node's own row is
/// kept and counted whatever its expiry: it is alive, it is calling.
pub(crate) async fn heartbeat(
    store: &PostgresStore,
    node: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO cluster_nodes (node, expires_at) VALUES ($1, $2)
         ON CONFLICT (node) DO UPDATE SET expires_at = EXCLUDED.expires_at",
    )
    .bind(node)
    .bind(expires_at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let others: i64 = sqlx::query_scalar(PRUNE_AND_COUNT_SQL)
        .bind(now)
        .bind(node)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1))
}

pub(crate) async fn leave(store: &PostgresStore, node: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM cluster_nodes WHERE node = $1")
        .bind(node)
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Moves the circuit's end to `until` only when that is later than the stored end; the row is
/// written (and locked) only then, so nodes that keep opening an already open circuit don't
/// queue on the endpoint's row.
pub(crate) async fn open_circuit(
    store: &PostgresStore,
    endpoint: &EndpointId,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE endpoints SET circuit_open_until = $1
         WHERE id = $2 AND (circuit_open_until IS NULL OR circuit_open_until < $1)",
    )
    .bind(until)
    .bind(endpoint.as_str())
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn circuit_open_until(
    store: &PostgresStore,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    sqlx::query_scalar("SELECT circuit_open_until FROM endpoints WHERE id = $1 AND circuit_open_until > $2")
        .bind(endpoint.as_str())
        .bind(now)
        .fetch_optional(&store.pool)
        .await
        .map_err(backend)
}
