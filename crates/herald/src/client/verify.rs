//! `herald verify`: checks a saved webhook's signature offline with `herald-receiver`, the
//! same code a receiver runs. Sends no network traffic.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use herald_receiver::Verifier;

/// Options of `herald verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The endpoint's signing secret (`whsec_…` or `whpk_…`).
    #[arg(long)]
    pub secret: String,
    /// A file of `Name: value` lines (e.g. `webhook-id: msg_…`), or a JSON object of them.
    #[arg(long)]
    pub headers: PathBuf,
    /// The exact body bytes as received.
    #[arg(long)]
    pub body: PathBuf,
    /// Skip the timestamp check (for webhooks saved long ago).
    #[arg(long)]
    pub ignore_timestamp: bool,
}

/// Runs `herald verify`: prints `valid`, or fails with the reason (exit status 1).
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let mut verifier = Verifier::new(&args.secret).context("the secret is not valid")?;
    if args.ignore_timestamp {
        verifier = verifier.tolerance(std::time::Duration::MAX);
    }
    let text = std::fs::read_to_string(&args.headers)
        .with_context(|| format!("could not read {}", args.headers.display()))?;
    let headers = parse_headers(&text)?;
    let body =
        std::fs::read(&args.body).with_context(|| format!("could not read {}", args.body.display()))?;
    match verifier.verify(&headers, &body) {
        Ok(verified) => {
            println!("valid (message {}, key {})", verified.id, verified.key_index);
            Ok(())
        }
        Err(error) => anyhow::bail!("invalid: {}: {error}", error.code()),
    }
}

/// Reads headers as a JSON object or as `Name: value` lines, names lowercased.
fn parse_headers(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    if text.trim_start().starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).context("the headers file is not a JSON object")?;
        return Ok(map
            .into_iter()
            .map(|(name, value)| {
                (name.to_ascii_lowercase(), value.as_str().map_or_else(|| value.to_string(), str::to_owned))
            })
            .collect());
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, value) =
                line.split_once(':').with_context(|| format!("the header line {line:?} has no `:`"))?;
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}
