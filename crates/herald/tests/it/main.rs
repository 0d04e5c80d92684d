//! Herald's integration tests: one binary, each test starting its own server on port 0 with a
//! fresh database, driving it over HTTP on loopback.

mod alerts;
mod applications;
mod auth;
mod bad_input;
mod bench;
mod cli;
mod client;
mod compat;
mod concurrency;
mod consent;
mod crash;
mod delivery;
mod endpoints;
mod event_types;
#[cfg(unix)]
mod files;
mod first_run;
mod health;
mod helpers;
mod https;
mod idempotency;
mod ingest;
mod ingest_sdk;
mod listen;
mod logs;
mod metrics;
mod openapi;
mod openapi_statuses;
mod ordered;
mod otlp;
mod process;
mod receiver;
mod refusal_log;
mod restart;
mod retention;
mod serving;
mod stats;
mod status;
mod svix_sdk;
mod tidy;
mod tls;
mod tokens;
mod ui;
mod url_credentials;
