//! `herald event-type …`: list, show, create, update and delete (archive) event types.

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, output, page_query, print_list, print_object};

/// Options of `herald event-type`.
#[derive(Debug, Args)]
pub struct EventTypeArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: EventTypeCommand,
}

/// What to do with event types.
#[derive(Debug, Subcommand)]
pub enum EventTypeCommand {
    /// List event types (one page; `--iterator` reads the next).
    List {
        /// At most this many (1 to 250; the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Where the page starts: the iterator printed after the previous page.
        #[arg(long)]
        iterator: Option<String>,
    },
    /// Show one event type.
    Get {
        /// The event type's name, e.g. invoice.paid.
        name: String,
    },
    /// Create an event type, e.g. `invoice.paid`.
    Create {
        /// The event type's name, e.g. invoice.paid.
        name: String,
        /// What the event type means, for the people who subscribe to it.
        #[arg(long)]
        description: String,
    },
    /// Change an event type's description, or bring an archived one back.
    Update {
        /// The event type's name, e.g. invoice.paid.
        name: String,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Make an archived event type current again.
        #[arg(long)]
        unarchive: bool,
    },
    /// Delete (archive) an event type.
    Delete {
        /// The event type's name, e.g. invoice.paid.
        name: String,
    },
}

const COLUMNS: &[(&str, &str)] =
    &[("NAME", "name"), ("DESCRIPTION", "description"), ("ARCHIVED", "archived")];

/// Runs `herald event-type …`.
pub async fn run(args: EventTypeArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        EventTypeCommand::List { limit, iterator } => {
            let query = page_query(limit, iterator.as_deref());
            let answer = client.get(&format!("/api/v1/event-type{query}")).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        EventTypeCommand::Get { name } => {
            let answer = client.get(&format!("/api/v1/event-type/{}", segment(&name))).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EventTypeCommand::Update { name, description, unarchive } => {
            let mut body = json!({});
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if unarchive {
                body["archived"] = json!(false);
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                anyhow::bail!("nothing to change: give --description or --unarchive");
            }
            let answer = client.patch(&format!("/api/v1/event-type/{}", segment(&name)), &body).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EventTypeCommand::Create { name, description } => {
            let answer = client
                .post("/api/v1/event-type", &json!({ "name": name, "description": description }))
                .await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EventTypeCommand::Delete { name } => {
            client.delete(&format!("/api/v1/event-type/{}", segment(&name))).await?;
            if !connection.json {
                println!("Deleted event type {name}.");
            }
        }
    }
    Ok(())
}
