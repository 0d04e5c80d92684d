//! `herald listen`: a webhook receiver for local development. It prints every request it
//! gets, optionally checks its signature, forwards it to an app on this machine, keeps it in
//! a JSON-lines file, and (`herald listen replay`) sends stored requests again.
//!
//! This module owns the options and the wiring. It must never send traffic anywhere but
//! loopback: `--forward-to` is refused unless its host is 127.0.0.0/8, ::1 or localhost, and
//! the receiver binds 127.0.0.1 only.
//!
//! `--source` attaches the listener to an ingest source of a running Herald, through its API:
//! a destination for the listener's address is added at start and deleted at Ctrl-C.
//!
//! Answers given to the sender: 200 at once when nothing is forwarded; 401 with a JSON body
//! `{"code", "detail"}` when `--secret` is given and the signature does not check out (the
//! request is then printed and stored but not forwarded); when forwarding, the local app's
//! status, or 502 when the app is unreachable, so that the sender retries later.

mod forward;
mod print;
mod replay;
mod server;
mod store;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use self::forward::{ForwardError, ForwardUrl};
pub use self::store::StoredWebhook;

/// Every webhook in a `herald listen` store file, oldest first (for `herald verify --stored`).
pub fn read_store(path: &std::path::Path) -> anyhow::Result<Vec<StoredWebhook>> {
    store::read_all(path)
}

/// The file `herald listen` keeps received webhooks in unless `--store` says otherwise.
pub const DEFAULT_STORE: &str = "herald-listen.jsonl";

/// Options of `herald listen`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ListenArgs {
    /// Something other than receiving, e.g. `replay`.
    #[command(subcommand)]
    pub command: Option<ListenCommand>,
    /// How to receive (used when no subcommand is given).
    #[command(flatten)]
    pub receive: ReceiveArgs,
}

/// Subcommands of `herald listen`.
#[derive(Debug, Subcommand)]
pub enum ListenCommand {
    /// Send stored webhooks to a local app again.
    Replay(ReplayArgs),
}

/// Options for receiving webhooks.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// The port on 127.0.0.1 to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 8041)]
    pub port: u16,
    /// The endpoint's signing secret (`whsec_…` or `whpk_…`); every request is verified and
    /// refused with 401 when the signature does not check out.
    #[arg(long)]
    pub secret: Option<String>,
    /// A loopback URL of the app under development; each request is forwarded to it and the
    /// app's status is returned to the sender.
    #[arg(long, value_parser = ForwardUrl::parse)]
    pub forward_to: Option<ForwardUrl>,
    /// The JSON-lines file received webhooks are appended to.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Attach to this ingest source (id or uid) of the Herald at --url: a destination pointing
    /// here is added while listening (removed at Ctrl-C), and its secret verifies what
    /// arrives. That Herald must be allowed to deliver to loopback (`allowed_cidrs`).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub connection: crate::client::Connection,
}

/// Options of `herald listen replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The JSON-lines file written by `herald listen`.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// The loopback URL to send the stored webhooks to.
    #[arg(long, value_parser = ForwardUrl::parse)]
    pub forward_to: ForwardUrl,
    /// Only the webhook with this `webhook-id` (every stored request with it); all when absent.
    #[arg(long)]
    pub id: Option<String>,
}

/// Runs `herald listen` (or its subcommand) until interrupted or done.
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    match args.command {
        Some(ListenCommand::Replay(replay)) => replay::run(replay).await,
        None => server::run(args.receive).await,
    }
}
