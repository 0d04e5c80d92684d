//! `herald endpoint …`: list, show, create, update and delete endpoints, show and rotate
//! their signing secrets, recover failed deliveries, and test a receiver (`endpoint_test.rs`).

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, output, page_query, print_list, print_object};

/// Options of `herald endpoint`.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: EndpointCommand,
}

/// What to do with endpoints.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// List an application's endpoints (one page; `--iterator` reads the next).
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
    /// Show one endpoint.
    Get {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
    },
    /// Create an endpoint.
    Create {
        /// The application's id or uid.
        app: String,
        /// Where deliveries are sent.
        #[arg(long = "endpoint-url", visible_alias = "to")]
        endpoint_url: String,
        /// Deliver only these event types (repeatable; all when absent).
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// A note for people, e.g. what the endpoint is for.
        #[arg(long)]
        description: Option<String>,
        /// Sent as `Authorization: Bearer <token>` with every delivery.
        #[arg(long)]
        bearer_token: Option<String>,
    },
    /// Change an endpoint: only the options given change.
    Update {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
        /// Where deliveries are sent.
        #[arg(long = "endpoint-url", visible_alias = "to")]
        endpoint_url: Option<String>,
        /// Deliver only these event types (repeatable; replaces the current list).
        #[arg(long = "event-type", conflicts_with = "all_event_types")]
        event_types: Vec<String>,
        /// Deliver every event type (clears the filter).
        #[arg(long)]
        all_event_types: bool,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Stop deliveries to the endpoint.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Resume deliveries to the endpoint.
        #[arg(long)]
        enable: bool,
    },
    /// Delete an endpoint.
    Delete {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
    },
    /// Print the endpoint's signing secret (`whsec_…`).
    Secret {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
    },
    /// Replace the endpoint's signing secret with a new random one.
    RotateSecret {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
    },
    /// Send one example of every event type the endpoint subscribes to (to it alone), wait for
    /// the attempts and print what each got back; fails when any did not succeed.
    Test {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
        /// How long to wait for the attempts, e.g. 30s.
        #[arg(long, default_value = "30s", value_parser = super::parse_wait)]
        wait: std::time::Duration,
    },
    /// Send again every message that failed to reach the endpoint since a time.
    Recover {
        /// The application's id or uid.
        app: String,
        /// The endpoint's id or uid.
        endpoint: String,
        /// RFC 3339, e.g. 2024-01-31T00:00:00Z.
        #[arg(long)]
        since: String,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("URL", "url"),
    ("EVENT TYPES", "eventTypes"),
    ("DISABLED", "disabled"),
    ("DESCRIPTION", "description"),
];

fn path(app: &str, endpoint: &str) -> String {
    format!("/api/v1/app/{}/endpoint/{}", segment(app), segment(endpoint))
}

/// Prints the server's warnings about an endpoint it saved (e.g. a URL its SSRF guard will
/// refuse) on stderr, where they are seen even with `--json`.
fn warn_about(answer: &serde_json::Value) {
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning["detail"].as_str().unwrap_or_default());
    }
}

/// Runs `herald endpoint …`.
pub async fn run(args: EndpointArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        EndpointCommand::List { app, limit, iterator } => {
            let query = page_query(limit, iterator.as_deref());
            let answer = client.get(&format!("/api/v1/app/{}/endpoint{query}", segment(&app))).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        EndpointCommand::Get { app, endpoint } => {
            let answer = client.get(&path(&app, &endpoint)).await?;
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EndpointCommand::Create { app, endpoint_url, event_types, description, bearer_token } => {
            let mut body = json!({ "url": endpoint_url, "description": description.unwrap_or_default() });
            if !event_types.is_empty() {
                body["eventTypes"] = json!(event_types);
            }
            if let Some(token) = bearer_token {
                body["bearerToken"] = json!(token);
            }
            let answer = client.post(&format!("/api/v1/app/{}/endpoint", segment(&app)), &body).await?;
            warn_about(&answer);
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EndpointCommand::Update {
            app,
            endpoint,
            endpoint_url,
            event_types,
            all_event_types,
            description,
            disable,
            enable,
        } => {
            let mut body = json!({});
            if let Some(url) = endpoint_url {
                body["url"] = json!(url);
            }
            if all_event_types {
                body["filterTypes"] = serde_json::Value::Null;
            } else if !event_types.is_empty() {
                body["filterTypes"] = json!(event_types);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if disable || enable {
                body["disabled"] = json!(disable);
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                anyhow::bail!("nothing to change: give at least one option (see --help)");
            }
            let answer = client.patch(&path(&app, &endpoint), &body).await?;
            warn_about(&answer);
            output(connection, &answer, |value| print_object(value, COLUMNS));
        }
        EndpointCommand::Delete { app, endpoint } => {
            client.delete(&path(&app, &endpoint)).await?;
            if !connection.json {
                println!("Deleted endpoint {endpoint}.");
            }
        }
        EndpointCommand::Secret { app, endpoint } => {
            let answer = client.get(&format!("{}/secret", path(&app, &endpoint))).await?;
            output(connection, &answer, |value| println!("{}", value["key"].as_str().unwrap_or_default()));
        }
        EndpointCommand::RotateSecret { app, endpoint } => {
            client.post(&format!("{}/secret/rotate", path(&app, &endpoint)), &json!({})).await?;
            let answer = client.get(&format!("{}/secret", path(&app, &endpoint))).await?;
            output(connection, &answer, |value| println!("{}", value["key"].as_str().unwrap_or_default()));
        }
        EndpointCommand::Test { app, endpoint, wait } => {
            super::endpoint_test::run(&client, connection, &app, &endpoint, wait).await?;
        }
        EndpointCommand::Recover { app, endpoint, since } => {
            let answer = client
                .post(&format!("{}/recover", path(&app, &endpoint)), &json!({ "since": since }))
                .await?;
            output(connection, &answer, |value| {
                print_object(value, &[("ID", "id"), ("STATUS", "status"), ("TASK", "task")]);
            });
        }
    }
    Ok(())
}
