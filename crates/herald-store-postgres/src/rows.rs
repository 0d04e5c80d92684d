//! Conversions between PostgreSQL column values and domain values, and the keyset-paging SQL
//! shared by every list.

use std::fmt::Display;
use std::str::FromStr;

use herald_core::StoreError;
use herald_core::delivery::{DeliveryStatus, Trigger};
use herald_core::name::{Metadata, NameError};
use herald_core::store::{Ordering, Page, PageRequest};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

pub(crate) fn corrupt(what: &str, error: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// Reads a column, reporting a type mismatch as unreadable data.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

/// Reads a text column and parses it (an id, a URL).
pub(crate) fn parse<T>(row: &PgRow, column: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    get::<String>(row, column)?.parse().map_err(|e| corrupt(column, e))
}

/// Reads a nullable text column and parses it with a name parser.
pub(crate) fn parse_optional_name<T>(
    row: &PgRow,
    column: &str,
    parse: fn(&str) -> Result<T, NameError>,
) -> Result<Option<T>, StoreError> {
    get::<Option<String>>(row, column)?.map(|text| parse(&text)).transpose().map_err(|e| corrupt(column, e))
}

/// Metadata is bound as JSON text and cast to JSONB in SQL (`$n::jsonb`); it is read back
/// as text (`metadata::text`), so no JSON support is needed in the driver.
pub(crate) fn metadata_to_json(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn metadata_from_json(row: &PgRow, column: &str) -> Result<Metadata, StoreError> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(column, e))
}

/// A list of names as a TEXT[] value, or NULL.
pub(crate) fn names_to_array<T: Display>(names: &Option<Vec<T>>) -> Option<Vec<String>> {
    names.as_ref().map(|list| list.iter().map(ToString::to_string).collect())
}

/// Reads a TEXT[] column written by [`names_to_array`].
pub(crate) fn parse_names<T>(
    row: &PgRow,
    column: &str,
    parse: fn(&str) -> Result<T, NameError>,
) -> Result<Option<Vec<T>>, StoreError> {
    let Some(raw) = get::<Option<Vec<String>>>(row, column)? else { return Ok(None) };
    raw.iter()
        .map(|name| parse(name).map_err(|e| corrupt(column, e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Status and trigger codes are SMALLINT columns (Svix's codes fit easily).
pub(crate) fn status_code(status: DeliveryStatus) -> i16 {
    status.code() as i16
}

pub(crate) fn trigger_code(trigger: Trigger) -> i16 {
    trigger.code() as i16
}

pub(crate) fn parse_status(row: &PgRow, column: &str) -> Result<DeliveryStatus, StoreError> {
    let code: i16 = get(row, column)?;
    DeliveryStatus::from_code(i64::from(code)).ok_or_else(|| corrupt(column, code))
}

pub(crate) fn parse_trigger(row: &PgRow, column: &str) -> Result<Trigger, StoreError> {
    let code: i16 = get(row, column)?;
    Trigger::from_code(i64::from(code)).ok_or_else(|| corrupt(column, code))
}

/// Reads a nullable INTEGER rate limit.
pub(crate) fn parse_throttle(row: &PgRow) -> Result<Option<u16>, StoreError> {
    let rate: Option<i32> = get(row, "throttle_rate")?;
    rate.map(u16::try_from).transpose().map_err(|e| corrupt("throttle_rate", e))
}

/// The keyset-paging part of a list query for one page request: the same semantics as the
/// SQLite backend's (items after or before a key, in either order, one extra row fetched to
/// learn whether more exist).
#[derive(Debug)]
pub(crate) struct PagePlan {
    /// The cursor key and how the paged column compares with it (`>` or `<`).
    cursor: Option<(&'static str, String)>,
    /// `ORDER BY` direction.
    direction: &'static str,
    /// Whether the rows must be reversed back into the requested order (backwards paging).
    reverse: bool,
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
            reverse: backwards,
            limit: usize::from(page.limit),
        }
    }

    /// Appends ` AND <column> > $n` (or `<`) when the request has a cursor. The query must
    /// already have a `WHERE` clause.
    pub(crate) fn push_cursor(&self, query: &mut QueryBuilder<'_, Postgres>, column: &str) {
        if let Some((comparison, key)) = &self.cursor {
            query.push(format_args!(" AND {column} {comparison} ")).push_bind(key.clone());
        }
    }

    /// Appends ` ORDER BY <column> <direction> LIMIT $n`, fetching one row beyond the page.
    pub(crate) fn push_order_and_limit(&self, query: &mut QueryBuilder<'_, Postgres>, column: &str) {
        let fetch = i64::try_from(self.limit).unwrap_or(i64::MAX).saturating_add(1);
        query.push(format_args!(" ORDER BY {column} {} LIMIT ", self.direction)).push_bind(fetch);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(order: Ordering, after: Option<&str>, before: Option<&str>) -> PagePlan {
        PagePlan::new(&PageRequest {
            limit: 2,
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
            order,
        })
    }

    #[test]
    fn backwards_pages_walk_against_the_requested_order_and_come_back_reversed() {
        let forward = plan(Ordering::Ascending, Some("k"), None);
        assert_eq!((forward.cursor.as_ref().map(|c| c.0), forward.direction), (Some(">"), "ASC"));
        let backward = plan(Ordering::Ascending, None, Some("k"));
        assert_eq!((backward.cursor.as_ref().map(|c| c.0), backward.direction), (Some("<"), "DESC"));
        let newest_back = plan(Ordering::Descending, None, Some("k"));
        assert_eq!((newest_back.cursor.as_ref().map(|c| c.0), newest_back.direction), (Some(">"), "ASC"));
        let page = backward.finish(vec![3, 2, 1]);
        assert_eq!((page.items, page.has_more), (vec![2, 3], true));
    }

    #[test]
    fn the_extra_row_only_signals_more() {
        let page = plan(Ordering::Ascending, None, None).finish(vec![1, 2]);
        assert_eq!((page.items, page.has_more), (vec![1, 2], false));
    }
}
