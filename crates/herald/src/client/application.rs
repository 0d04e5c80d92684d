//! `herald app …`: list, show, create, update and delete applications.

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, output, page_query, print_list, print_object};

/// Options of `herald app`.
#[derive(Debug, Args)]
pub struct AppArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// What to do with applications.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List applications (one page).
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Where the page starts: the iterator printed after the previous page.
        #[arg(long)]
        iterator: Option<String>,
    },
    /// Show one application, by id or uid.
    Get {
        /// The application's id or uid.
        app: String,
    },
    /// Create an application.
    Create {
        /// The application's name, shown to people.
        #[arg(long)]
        name: String,
        /// Your own unique id for it, usable wherever the id is.
        #[arg(long)]
        uid: Option<String>,
    },
    /// Change an application's name or uid.
    Update {
        /// The application's id or uid.
        app: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new uid (your own unique id for it).
        #[arg(long)]
        uid: Option<String>,
    },
    /// Delete an application and everything in it.
    Delete {
        /// The application's id or uid.
        app: String,
    },
}

const COLUMNS: &[(&str, &str)] = &[("ID", "id"), ("UID", "uid"), ("NAME", "name"), ("CREATED", "createdAt")];

/// Runs `herald app …`.
pub async fn run(args: AppArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        AppCommand::List { limit, iterator } => {
            let answer =
                client.get(&format!("/api/v1/app{}", page_query(limit, iterator.as_deref()))).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        AppCommand::Get { app } => {
            let answer = client.get(&format!("/api/v1/app/{}", segment(&app))).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        AppCommand::Create { name, uid } => {
            let answer = client.post("/api/v1/app", &json!({ "name": name, "uid": uid })).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        AppCommand::Update { app, name, uid } => {
            let mut body = serde_json::Map::new();
            if let Some(name) = name {
                body.insert("name".to_owned(), name.into());
            }
            if let Some(uid) = uid {
                body.insert("uid".to_owned(), uid.into());
            }
            let answer = client.patch(&format!("/api/v1/app/{}", segment(&app)), &body.into()).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        AppCommand::Delete { app } => {
            client.delete(&format!("/api/v1/app/{}", segment(&app))).await?;
            if !connection.json {
                println!("Deleted application {app}.");
            }
        }
    }
    Ok(())
}
