//! `herald source …`: list, show, create, rotate and delete ingest sources (where providers
//! send webhooks for you), and list a source's refusals. A provider's secret is read from
//! standard input (`--secret-stdin`), never from a flag, so it stays out of shell history
//! and process lists.

use std::io::Read as _;

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, output, page_query, print_list, print_object};

/// Options of `herald source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: SourceCommand,
}

/// What to do with sources.
#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// List sources (one page).
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Where the page starts: the iterator printed after the previous page.
        #[arg(long)]
        iterator: Option<String>,
    },
    /// Show one source, by id or uid, with its ingest URL.
    Get {
        /// The source's id or uid.
        source: String,
    },
    /// Create a source and print its ingest URL.
    Create {
        /// A name for people, e.g. "GitHub (production)".
        #[arg(long)]
        name: String,
        /// The provider: github, stripe, shopify, slack, svix, standard-webhooks, clerk, … or
        /// generic-webhook.
        #[arg(long = "type")]
        kind: String,
        /// Your own unique id for it, usable wherever the id is.
        #[arg(long)]
        uid: Option<String>,
        /// Read the provider's signing secret from standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// Telnyx: the account's ed25519 public key (base64).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Give a source a new ingest URL (the old one keeps working for ingest_token_grace).
    Rotate {
        /// The source's id or uid.
        source: String,
    },
    /// Delete a source with its destinations and events.
    Delete {
        /// The source's id or uid.
        source: String,
    },
    /// The source's newest refused requests: reason, time, address.
    Refusals {
        /// The source's id or uid.
        source: String,
    },
}

const COLUMNS: &[(&str, &str)] =
    &[("ID", "id"), ("UID", "uid"), ("NAME", "name"), ("TYPE", "type"), ("INGEST URL", "ingestUrl")];
const REFUSAL_COLUMNS: &[(&str, &str)] =
    &[("TIME", "timestamp"), ("REASON", "reason"), ("ADDRESS", "address")];

/// Runs `herald source …`.
pub async fn run(args: SourceArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        SourceCommand::List { limit, iterator } => {
            let path = format!("/ingest/api/v1/source{}", page_query(limit, iterator.as_deref()));
            let answer = client.get(&path).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        SourceCommand::Get { source } => {
            let answer = client.get(&format!("/ingest/api/v1/source/{}", segment(&source))).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        SourceCommand::Create { name, kind, uid, secret_stdin, public_key } => {
            let mut config = serde_json::Map::new();
            if secret_stdin {
                let mut secret = String::new();
                std::io::stdin().read_to_string(&mut secret)?;
                config.insert("secret".to_owned(), secret.trim().into());
            }
            if let Some(key) = public_key {
                config.insert("publicKey".to_owned(), key.into());
            }
            let body = json!({ "name": name, "type": kind, "uid": uid, "config": config });
            let answer = client.post("/ingest/api/v1/source", &body).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        SourceCommand::Rotate { source } => {
            let path = format!("/ingest/api/v1/source/{}/token/rotate", segment(&source));
            let answer = client.post(&path, &json!({})).await?;
            output(connection, &answer, |value| print_object(value, &[("INGEST URL", "ingestUrl")]));
        }
        SourceCommand::Delete { source } => {
            client.delete(&format!("/ingest/api/v1/source/{}", segment(&source))).await?;
            if !connection.json {
                println!("Deleted source {source}.");
            }
        }
        SourceCommand::Refusals { source } => {
            let answer = client.get(&format!("/ingest/api/v1/source/{}/refusal", segment(&source))).await?;
            output(connection, &answer, |value| print_list(value, REFUSAL_COLUMNS));
        }
    }
    Ok(())
}
