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
    #[arg(long, required_unless_present = "stored", requires = "body")]
    pub headers: Option<PathBuf>,
    /// The exact body bytes as received.
    #[arg(long, required_unless_present = "stored", requires = "headers")]
    pub body: Option<PathBuf>,
    /// Read the webhook from a `herald listen` store file instead of --headers and --body
    /// (its body was stored as text, so a body that was not UTF-8 can't verify from it).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["headers", "body"])]
    pub stored: Option<PathBuf>,
    /// With --stored: the `webhook-id` to check; the last webhook in the file by default.
    #[arg(long, requires = "stored")]
    pub id: Option<String>,
    /// Skip the timestamp check (for webhooks saved long ago).
    #[arg(long)]
    pub ignore_timestamp: bool,
}

/// Header names (lowercased) and values.
type Headers = Vec<(String, String)>;

/// Runs `herald verify`: prints `valid`, or fails with the reason (exit status 1).
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let mut verifier = Verifier::new(&args.secret).context("the secret is not valid")?;
    if args.ignore_timestamp {
        verifier = verifier.tolerance(std::time::Duration::MAX);
    }
    let (headers, body) = match (&args.stored, &args.headers, &args.body) {
        (Some(store), _, _) => from_store(store, args.id.as_deref())?,
        (None, Some(headers), Some(body)) => {
            let text = std::fs::read_to_string(headers)
                .with_context(|| format!("could not read {}", headers.display()))?;
            let body = std::fs::read(body).with_context(|| format!("could not read {}", body.display()))?;
            (parse_headers(&text)?, body)
        }
        _ => anyhow::bail!("give --headers and --body, or --stored"),
    };
    match verifier.verify(&headers, &body) {
        Ok(verified) => {
            println!("valid (message {}, key {})", verified.id, verified.key_index);
            Ok(())
        }
        Err(error) => anyhow::bail!("invalid: {}: {error}", error.code()),
    }
}

/// The headers and body of a webhook in a `herald listen` store: the one with `id`, or the
/// last one received.
fn from_store(store: &std::path::Path, id: Option<&str>) -> anyhow::Result<(Headers, Vec<u8>)> {
    let webhooks = crate::listen::read_store(store)?;
    let webhook = match id {
        Some(id) => webhooks
            .iter()
            .rev()
            .find(|w| w.webhook_id.as_deref() == Some(id))
            .with_context(|| format!("no webhook with id {id} in {}", store.display()))?,
        None => webhooks.last().with_context(|| format!("{} holds no webhook yet", store.display()))?,
    };
    let headers =
        webhook.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect();
    Ok((headers, webhook.body.clone().into_bytes()))
}

/// Reads headers as a JSON object or as `Name: value` lines, names lowercased.
fn parse_headers(text: &str) -> anyhow::Result<Headers> {
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
