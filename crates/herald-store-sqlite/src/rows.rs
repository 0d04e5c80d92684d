//! Conversions between SQLite column values and domain values, and the paging SQL shared by
//! every list.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::name::Metadata;
use herald_core::store::{Ordering, Page, PageRequest};

/// Timestamps are stored as microseconds since the Unix epoch.
pub(crate) fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp out of range: {micros}")))
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

pub(crate) fn metadata_to_json(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn metadata_from_json(text: &str) -> Result<Metadata, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("metadata", e))
}

/// The pieces of a keyset-paginated query for one page request.
#[derive(Debug)]
pub(crate) struct PagePlan {
    /// `WHERE` comparison against the cursor (`>` or `<`), when there is a cursor.
    pub cursor: Option<(&'static str, String)>,
    /// `ORDER BY` direction.
    pub direction: &'static str,
    /// Rows to fetch: one more than the page, to learn whether more exist.
    pub fetch: i64,
    /// Whether the rows must be reversed back into the requested order (backwards paging).
    pub reverse: bool,
    limit: usize,
}

impl PagePlan {
    pub(crate) fn new(page: &PageRequest) -> Self {
        let ascending = page.order == Ordering::Ascending;
        let backwards = page.before.is_some();
        // Reading backwards walks the key in the opposite direction of the requested order.
        let walk_ascending = ascending != backwards;
        let comparison = if walk_ascending { ">" } else { "<" };
        let cursor = page.before.clone().or_else(|| page.after.clone()).map(|key| (comparison, key));
        Self {
            cursor,
            direction: if walk_ascending { "ASC" } else { "DESC" },
            fetch: i64::from(page.limit) + 1,
            reverse: backwards,
            limit: usize::from(page.limit),
        }
    }

    /// Cuts the fetched rows to the page and restores the requested order.
    pub(crate) fn finish<T>(&self, mut items: Vec<T>) -> Page<T> {
        let has_more = items.len() > self.limit;
        items.truncate(self.limit);
        if self.reverse {
            items.reverse();
        }
        Page { items, has_more }
    }
}

/// A list of names as a JSON array, or NULL.
pub(crate) fn names_to_json<T: serde::Serialize>(names: &Option<Vec<T>>) -> Option<String> {
    names.as_ref().map(|list| serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned()))
}

/// Parses a JSON array of names written by [`names_to_json`].
pub(crate) fn parse_names<T>(
    text: Option<String>,
    parse: fn(&str) -> Result<T, herald_core::name::NameError>,
) -> Result<Option<Vec<T>>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let raw: Vec<String> = serde_json::from_str(&text).map_err(|e| corrupt("name list", e))?;
    raw.iter()
        .map(|name| parse(name).map_err(|e| corrupt("name list", e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
