//! `herald event-type …`: list, create and delete (archive) event types.

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, limit_query, output, print_list, print_object};

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
    /// List event types (one page).
    List {
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Create an event type, e.g. `invoice.paid`.
    Create {
        name: String,
        #[arg(long)]
        description: String,
    },
    /// Delete (archive) an event type.
    Delete { name: String },
}

const COLUMNS: &[(&str, &str)] =
    &[("NAME", "name"), ("DESCRIPTION", "description"), ("ARCHIVED", "archived")];

/// Runs `herald event-type …`.
pub async fn run(args: EventTypeArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        EventTypeCommand::List { limit } => {
            let answer = client.get(&format!("/api/v1/event-type{}", limit_query(limit))).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
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
