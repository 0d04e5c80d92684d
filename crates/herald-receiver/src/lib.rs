//! Verify webhooks from Herald, Svix, or any [Standard Webhooks] sender, on the receiving
//! side.
//!
//! A signed request carries `webhook-id`, `webhook-timestamp` and `webhook-signature` (or the
//! same under `svix-*` names). [`Verifier`] checks that one of the signatures was made over
//! `{id}.{timestamp}.{body}` with one of your keys — a `whsec_` shared secret (HMAC-SHA256,
//! `v1`) or a `whpk_` public key (ed25519, `v1a`) — and that the timestamp is recent, so a
//! captured request can't be replayed later. [`verify_bearer`] checks an
//! `Authorization: Bearer` token, and [`MemorySeen`] remembers message ids so that a message
//! delivered twice is handled once.
//!
//! A complete receiver with axum (feature `axum`):
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod receiver {
//! use std::sync::Arc;
//!
//! use axum::extract::{FromRef, State};
//! use axum::{Router, http::StatusCode, routing::post};
//! use herald_receiver::{MemorySeen, SeenStore, Verifier, axum::VerifiedWebhook};
//!
//! #[derive(Clone)]
//! struct App {
//!     verifier: Verifier,
//!     seen: Arc<MemorySeen>,
//! }
//!
//! impl FromRef<App> for Verifier {
//!     fn from_ref(app: &App) -> Verifier {
//!         app.verifier.clone()
//!     }
//! }
//!
//! // Runs only for requests that verified; the others got a 401 with a JSON reason.
//! async fn receive(State(app): State<App>, webhook: VerifiedWebhook) -> StatusCode {
//!     if app.seen.check_and_mark(&webhook.id) {
//!         println!("{} at {}: {} bytes", webhook.id, webhook.timestamp, webhook.body.len());
//!     }
//!     StatusCode::NO_CONTENT
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let verifier = Verifier::new(&std::env::var("WEBHOOK_SECRET")?)?;
//!     let app = App { verifier, seen: Arc::new(MemorySeen::default()) };
//!     let router = Router::new().route("/webhook", post(receive)).with_state(app);
//!     axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, router).await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! Without a framework, hand [`Verifier::verify`] anything that implements
//! [`HeaderSource`] (an `http::HeaderMap`, a slice of name/value pairs, a map) and the body
//! bytes exactly as received — before any JSON parsing, which would change them.
//!
//! # Features
//!
//! - `http` (default): [`HeaderSource`] for `http::HeaderMap` (http 1.x).
//! - `axum`: the `herald_receiver::axum` module: `VerifiedWebhook`, an extractor for
//!   axum 0.8, and its rejection.
//!
//! # What this crate never does
//!
//! It never logs, never puts a key or a signature into an error or a `Debug` output, and
//! never compares a secret-derived value with an early-exit comparison.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
mod bearer;
mod headers;
mod key;
mod seen;
mod signature;
mod verify;

pub use bearer::{BearerError, verify_bearer};
pub use headers::HeaderSource;
pub use key::KeyError;
pub use seen::{MemorySeen, SeenStore};
pub use verify::{DEFAULT_TOLERANCE, Verified, Verifier, VerifyError};
