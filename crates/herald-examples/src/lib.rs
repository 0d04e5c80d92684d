//! Examples of Herald in use, as a library so that tests can start them in-process on
//! port 0 and the binaries in `src/bin` stay a few lines of argument parsing.
//!
//! - [`purchase_orders`]: the sending side of the webhook guide. An e-commerce service whose
//!   clients register a callback URL and token with each purchase order; it hands delivery
//!   to Herald (one application per client, one endpoint carrying the client's token).
//! - [`receiver`]: the receiving side. Acknowledges each webhook as soon as it is on disk,
//!   then verifies nothing twice: a background task drops duplicates by `webhook-id`.
//!
//! Neither example talks to Herald except over its public HTTP API.

pub mod herald_api;
pub mod purchase_orders;
pub mod receiver;
