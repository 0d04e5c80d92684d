//! Herald: a reliable, fast webhook server, wire-compatible with the Svix API v1.
//!
//! The binary (`main.rs`) parses the command line and calls into these modules; integration
//! tests use them directly to start servers on port 0.

pub mod api;
pub mod app;
pub mod bench;
pub mod client;
pub mod config;
pub mod listen;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod scripts;
pub mod service;
pub mod worker;
