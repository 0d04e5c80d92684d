//! List parameters and the Svix list envelope `{data, iterator, prevIterator, done}`.

use herald_core::store::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Ordering, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::{ApiError, ValidationErrorItem};

/// Sort order of a list.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderParam {
    Ascending,
    Descending,
}

/// The paging parameters every list takes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 250 (default 50).
    pub limit: Option<u64>,
    /// The `iterator` of the previous page; prefix it with `-` (the `prevIterator`) to page back.
    pub iterator: Option<String>,
    /// `ascending` or `descending`.
    pub order: Option<OrderParam>,
}

impl ListParams {
    /// The store's page request for these parameters.
    pub fn page_request(&self, default_order: Ordering) -> Result<PageRequest, ApiError> {
        let limit = match self.limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(limit) if (1..=u64::from(MAX_PAGE_LIMIT)).contains(&limit) => limit as u16,
            Some(_) => {
                return Err(ApiError::Validation(vec![ValidationErrorItem {
                    loc: vec!["query".to_owned(), "limit".to_owned()],
                    msg: format!("limit must be between 1 and {MAX_PAGE_LIMIT}"),
                    kind: "value_error".to_owned(),
                }]));
            }
        };
        let order = match self.order {
            None => default_order,
            Some(OrderParam::Ascending) => Ordering::Ascending,
            Some(OrderParam::Descending) => Ordering::Descending,
        };
        let (after, before) = match self.iterator.as_deref().filter(|i| !i.is_empty()) {
            None => (None, None),
            Some(iterator) => match iterator.strip_prefix('-') {
                Some(before) => (None, Some(iterator_key(before)?)),
                None => (Some(iterator_key(iterator)?), None),
            },
        };
        Ok(PageRequest { limit, after, before, order })
    }
}

/// The longest key an iterator can hold: an id, or an event type's name (256 characters).
const MAX_ITERATOR_LENGTH: usize = 256;

/// Checks the key of an `iterator`. Every iterator Herald hands out is an id or an event
/// type's name, so anything else (a NUL, a space, text no list ever returned) is the
/// caller's mistake, refused here before a store sees it: PostgreSQL can't even compare a NUL.
fn iterator_key(key: &str) -> Result<String, ApiError> {
    let well_formed = !key.is_empty()
        && key.len() <= MAX_ITERATOR_LENGTH
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if well_formed {
        Ok(key.to_owned())
    } else {
        Err(ApiError::Validation(vec![ValidationErrorItem {
            loc: vec!["query".to_owned(), "iterator".to_owned()],
            msg: "not an iterator this list returned (`iterator` or `prevIterator` of a page)".to_owned(),
            kind: "value_error".to_owned(),
        }]))
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass as `iterator` to get the next page.
    pub iterator: Option<String>,
    /// Pass as `iterator` to get the previous page.
    pub prev_iterator: Option<String>,
    /// Whether this is the last page.
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// Wraps a store page, keying iterators with `key` and converting items with `convert`.
    pub fn from_page<I>(
        page: Page<I>,
        request: &PageRequest,
        key: impl Fn(&I) -> String,
        convert: impl Fn(I) -> T,
    ) -> Self {
        let first = page.items.first().map(&key);
        let last = page.items.last().map(&key);
        let iterator = last.or_else(|| request.after.clone());
        let prev_iterator = first.or_else(|| request.before.clone()).map(|k| format!("-{k}"));
        Self {
            data: page.items.into_iter().map(convert).collect(),
            iterator,
            prev_iterator,
            done: !page.has_more,
        }
    }
}
