//! `herald message …` and `herald send`: list and show messages, and send one.

use std::io::Read as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::http::segment;
use super::{Connection, output, page_query, print_list, print_object};

/// Options of `herald message`.
#[derive(Debug, Args)]
pub struct MessageArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: MessageCommand,
}

/// What to do with messages.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List an application's messages, newest first (one page).
    List {
        /// The application's id or uid.
        app: String,
        /// At most this many (1 to 250; the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Where the page starts: the iterator printed after the previous page.
        #[arg(long)]
        iterator: Option<String>,
    },
    /// Show one message with its payload.
    Get {
        /// The application's id or uid.
        app: String,
        /// The message's id or eventId.
        message: String,
    },
}

/// Options of `herald send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The application (id or uid).
    pub app: String,
    /// The message's event type (registered with `herald event-type create`).
    #[arg(long)]
    pub event_type: String,
    /// The JSON payload, sent byte for byte as given; read from stdin when absent or `-`.
    #[arg(long)]
    pub payload: Option<String>,
    /// Your id for the event, unique per application: a second message with the same one is
    /// refused (409 `event_id_taken`), so a retried send never delivers twice.
    #[arg(long)]
    pub event_id: Option<String>,
}

const COLUMNS: &[(&str, &str)] =
    &[("ID", "id"), ("EVENT TYPE", "eventType"), ("EVENT ID", "eventId"), ("TIMESTAMP", "timestamp")];

/// Runs `herald message …`.
pub async fn run(args: MessageArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        MessageCommand::List { app, limit, iterator } => {
            let query = page_query(limit, iterator.as_deref());
            let answer = client.get(&format!("/api/v1/app/{}/msg{query}", segment(&app))).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        MessageCommand::Get { app, message } => {
            let answer =
                client.get(&format!("/api/v1/app/{}/msg/{}", segment(&app), segment(&message))).await?;
            output(connection, &answer, print_message);
        }
    }
    Ok(())
}

/// Runs `herald send`.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let text = match args.payload.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("could not read the payload from stdin")?;
            text
        }
        Some(text) => text.to_owned(),
    };
    // The payload goes out as the caller wrote it (the server keeps its bytes, and receivers
    // see them): checked to be JSON, never parsed and written again.
    let payload: &serde_json::value::RawValue =
        serde_json::from_str(text.trim()).context("the payload is not valid JSON")?;
    let body = MessageBody { event_type: &args.event_type, event_id: args.event_id.as_deref(), payload };
    let body = serde_json::to_string(&body).context("could not write the request")?;
    let answer = client.post_text(&format!("/api/v1/app/{}/msg", segment(&args.app)), body).await?;
    output(&args.connection, &answer, print_message);
    Ok(())
}

/// The body of `POST /api/v1/app/{app}/msg`, with the payload as raw JSON text.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageBody<'a> {
    event_type: &'a str,
    event_id: Option<&'a str>,
    payload: &'a serde_json::value::RawValue,
}

fn print_message(value: &Value) {
    print_object(value, COLUMNS);
    println!("PAYLOAD     {}", value.get("payload").unwrap_or(&Value::Null));
}
