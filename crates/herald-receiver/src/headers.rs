//! Where request headers come from: the `HeaderSource` trait and its implementations for
//! plain collections and (feature `http`) `http::HeaderMap`.
//!
//! This module only looks values up; it decides nothing about what they mean.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

/// The message id header, and the name Svix used before the standard.
pub(crate) const ID: [&str; 2] = ["webhook-id", "svix-id"];
/// The unix-seconds timestamp header, and its Svix name.
pub(crate) const TIMESTAMP: [&str; 2] = ["webhook-timestamp", "svix-timestamp"];
/// The signature list header, and its Svix name.
pub(crate) const SIGNATURE: [&str; 2] = ["webhook-signature", "svix-signature"];
/// The header carrying an endpoint's bearer token.
pub(crate) const AUTHORIZATION: &str = "authorization";

/// Read access to a request's headers, by name.
///
/// Implemented for `http::HeaderMap` (feature `http`, on by default), for slices, arrays and
/// vectors of `(name, value)` pairs, and for `HashMap`/`BTreeMap` from names to values, so
/// any framework can hand its headers over. Implement it for your own request type with one
/// method.
///
/// ```
/// use herald_receiver::HeaderSource;
///
/// struct LambdaEvent { headers: Vec<(String, String)> }
///
/// impl HeaderSource for LambdaEvent {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.headers.header(name)
///     }
/// }
/// ```
pub trait HeaderSource {
    /// The value of the header called `name`, or `None` when there is none.
    ///
    /// `name` is always lowercase ASCII; implementations should match names without regard
    /// to case, as HTTP does. When a header appears more than once, return the first.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<T: HeaderSource + ?Sized> HeaderSource for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name)).map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K, V, S> HeaderSource for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn header(&self, name: &str) -> Option<&str> {
        // Most maps hold lowercase names (HTTP/2 requires it), so try the cheap lookup first.
        self.get(name).map(AsRef::as_ref).or_else(|| find_ignoring_case(self.iter(), name))
    }
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> HeaderSource for BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref).or_else(|| find_ignoring_case(self.iter(), name))
    }
}

/// `http::HeaderMap` matches names without regard to case itself. A value that is not UTF-8
/// text counts as absent: no Standard Webhooks header can be valid with such bytes in it.
#[cfg(feature = "http")]
impl HeaderSource for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.get(name)?.as_bytes()).ok()
    }
}

/// The value of the first entry whose name is `name`, ignoring case.
fn find_ignoring_case<'a, K, V>(
    mut entries: impl Iterator<Item = (&'a K, &'a V)>,
    name: &str,
) -> Option<&'a str>
where
    K: Borrow<str> + 'a,
    V: AsRef<str> + 'a,
{
    entries
        .find(|(key, _)| Borrow::<str>::borrow(*key).eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_ref())
}

/// The value of the first of `names` present in `headers`.
pub(crate) fn first_of<'h>(
    headers: &'h (impl HeaderSource + ?Sized),
    names: [&'static str; 2],
) -> Option<&'h str> {
    names.iter().find_map(|name| headers.header(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_match_names_without_regard_to_case() {
        let headers = [("Webhook-Id", "msg_1"), ("webhook-id", "msg_2")];
        assert_eq!(headers.header("webhook-id"), Some("msg_1"));
        assert_eq!(headers.header("webhook-timestamp"), None);
    }

    #[test]
    fn maps_match_names_without_regard_to_case() {
        let hash: HashMap<String, String> = [("Svix-Id".to_owned(), "msg_1".to_owned())].into();
        assert_eq!(hash.header("svix-id"), Some("msg_1"));
        let tree: BTreeMap<&str, &str> = [("webhook-id", "msg_2")].into();
        assert_eq!(tree.header("webhook-id"), Some("msg_2"));
    }

    #[test]
    fn webhook_names_are_read_before_svix_names() {
        let headers = vec![("svix-id", "msg_svix"), ("webhook-id", "msg_standard")];
        assert_eq!(first_of(&headers, ID), Some("msg_standard"));
        assert_eq!(first_of(&headers[..1], ID), Some("msg_svix"));
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_maps_treat_values_that_are_not_text_as_absent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", http::HeaderValue::from_static("msg_1"));
        headers.insert(
            "webhook-timestamp",
            http::HeaderValue::from_bytes(b"\xff12").expect("opaque bytes are allowed"),
        );
        assert_eq!(headers.header("webhook-id"), Some("msg_1"));
        assert_eq!(headers.header("webhook-timestamp"), None);
    }
}
