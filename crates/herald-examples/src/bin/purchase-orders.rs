//! The purchase-order service: `cargo run -p herald-examples --bin purchase-orders`, with
//! HERALD_URL and HERALD_TOKEN set. See `herald_examples::purchase_orders` for its API.

use clap::Parser;
use herald_examples::herald_api::HeraldClient;

#[derive(Debug, Parser)]
#[command(about = "An e-commerce service that sends purchase-order webhooks through Herald")]
struct Args {
    /// Herald's base URL.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    herald_url: String,
    /// An organisation token for Herald's API.
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    herald_token: String,
    /// Where this service listens.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:4000")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("purchase-orders listening on http://{}", listener.local_addr()?);
    let herald = HeraldClient::new(&args.herald_url, &args.herald_token);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    herald_examples::purchase_orders::serve(listener, herald, shutdown).await?;
    Ok(())
}
