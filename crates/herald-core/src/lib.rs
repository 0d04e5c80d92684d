//! Herald's domain: ids, names, secrets, resource models and the `Store` trait.
//!
//! This crate does no I/O (no network, no files, no database) and depends on no web,
//! database or HTTP-client crate; that is what lets every backend and both edges share it.

pub mod change;
pub mod clock;
pub mod consent;
pub mod delivery;
pub mod endpoint_url;
pub mod example;
pub mod headers;
pub mod id;
pub mod ingest;
pub mod model;
pub mod name;
pub mod payload_schema;
pub mod retry;
pub mod sealed;
pub mod secret;
pub mod settle;
pub mod signature;
pub mod stats;
pub mod store;
pub mod token;
pub mod version;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use store::{Store, StoreError};
