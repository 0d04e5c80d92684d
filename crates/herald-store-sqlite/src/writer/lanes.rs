//! Finding ordered lanes' heads inside the writer's transaction, without reading the queue
//! behind them.
//!
//! A lane's head is its first holder by id (`deliveries_lane_holders` is ordered by endpoint,
//! lane and id, and holds only deliveries that hold their lane: pending, sending or held). The
//! search skips from one lane to the next through that index, two seeks per lane, so its cost
//! follows the number of lanes with work, never the messages queued in them. At most
//! [`LANE_SCAN`] lanes are looked at per lease; when there are more, the next lease goes on
//! after the last one looked at ([`LaneCursor`]), so every lane has its turn.

use herald_core::StoreError;
use herald_core::delivery::DeliveryId;
use rusqlite::Connection;

use super::sql_error;

/// The heads of up to `?3` lanes with work after the lane (`?1`, `?2`), as the table `heads`
/// (endpoint_id, lane, id, status, next_attempt_at). The next lane after (endpoint, lane) is
/// the next key of the same endpoint, else the first lane of the next endpoint: two seeks
/// instead of a row-value comparison, which SQLite would serve by reading the endpoint's whole
/// part of the index. A macro, so that statements can append to it with `concat!`.
macro_rules! heads_cte {
    () => {
        "WITH RECURSIVE heads(endpoint_id, lane, id, status, next_attempt_at) AS (
           SELECT endpoint_id, lane, id, status, next_attempt_at FROM deliveries WHERE id = COALESCE(
             (SELECT id FROM deliveries
              WHERE lane IS NOT NULL AND (status IN (1, 3) OR held = 1)
                AND endpoint_id = ?1 AND lane > ?2 ORDER BY lane, id LIMIT 1),
             (SELECT id FROM deliveries
              WHERE lane IS NOT NULL AND (status IN (1, 3) OR held = 1)
                AND endpoint_id > ?1 ORDER BY endpoint_id, lane, id LIMIT 1))
           UNION ALL
           SELECT d.endpoint_id, d.lane, d.id, d.status, d.next_attempt_at
           FROM heads h JOIN deliveries d ON d.id = COALESCE(
             (SELECT p.id FROM deliveries p
              WHERE p.lane IS NOT NULL AND (p.status IN (1, 3) OR p.held = 1)
                AND p.endpoint_id = h.endpoint_id AND p.lane > h.lane ORDER BY p.lane, p.id LIMIT 1),
             (SELECT p.id FROM deliveries p
              WHERE p.lane IS NOT NULL AND (p.status IN (1, 3) OR p.held = 1)
                AND p.endpoint_id > h.endpoint_id ORDER BY p.endpoint_id, p.lane, p.id LIMIT 1))
           LIMIT ?3)"
    };
}
pub(crate) use heads_cte;

/// The most lanes one lease looks at.
pub(crate) const LANE_SCAN: i64 = 1024;

/// Where the next lease's search for lane heads starts: after this endpoint and lane, or at
/// the first lane when `None`. Kept by the writer thread between batches.
#[derive(Debug, Default)]
pub(crate) struct LaneCursor(Option<(String, String)>);

/// A lane's head as the search found it.
pub(super) struct Head {
    pub(super) id: DeliveryId,
    pub(super) endpoint_id: String,
    /// Pending and due at the lease's time: the head may be leased.
    pub(super) leasable: bool,
}

/// The heads of up to [`LANE_SCAN`] lanes with work, starting after the cursor; moves the
/// cursor on (back to the start once the search reached the last lane).
pub(super) fn heads(conn: &Connection, cursor: &mut LaneCursor, now: i64) -> Result<Vec<Head>, StoreError> {
    let mut select = conn
        .prepare_cached(concat!(
            heads_cte!(),
            " SELECT id, endpoint_id, lane, status = 1 AND next_attempt_at <= ?4 FROM heads"
        ))
        .map_err(sql_error)?;
    let (endpoint, lane) = cursor.0.take().unwrap_or_default();
    let mut last = None;
    let mut found = Vec::new();
    let mut rows = select.query(rusqlite::params![endpoint, lane, LANE_SCAN, now]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let endpoint_id: String = row.get(1).map_err(sql_error)?;
        last = Some((endpoint_id.clone(), row.get(2).map_err(sql_error)?));
        found.push(Head {
            id: row.get(0).map_err(sql_error)?,
            endpoint_id,
            leasable: row.get(3).map_err(sql_error)?,
        });
    }
    if i64::try_from(found.len()).unwrap_or(i64::MAX) >= LANE_SCAN {
        cursor.0 = last;
    }
    Ok(found)
}
