//! The receiver: `cargo run -p herald-examples --bin receiver`, with WEBHOOK_SECRET set to
//! the endpoint's `whsec_…` secret (and WEBHOOK_BEARER_TOKEN if the endpoint has one).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use herald_examples::receiver::{ReceiverConfig, Stats};
use herald_receiver::Verifier;

#[derive(Debug, Parser)]
#[command(about = "A webhook receiver that acknowledges at once and processes in the background")]
struct Args {
    /// The endpoint's signing secret (`whsec_…`).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// The endpoint's bearer token, when it has one.
    #[arg(long, env = "WEBHOOK_BEARER_TOKEN", hide_env_values = true)]
    bearer_token: Option<String>,
    /// The journal every accepted request is appended to.
    #[arg(long, env = "RECEIVER_JOURNAL", default_value = "webhooks.jsonl")]
    journal: PathBuf,
    /// Where this receiver listens.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:4001")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let config = ReceiverConfig {
        verifier: Verifier::new(&args.secret)?,
        bearer_token: args.bearer_token,
        journal: args.journal,
        queue_capacity: 1024,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("receiver listening on http://{}", listener.local_addr()?);
    let stats = Arc::new(Stats::default());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    herald_examples::receiver::serve(listener, config, stats.clone(), shutdown).await?;
    println!("processed {}, duplicates ignored {}", stats.processed(), stats.duplicates());
    Ok(())
}
