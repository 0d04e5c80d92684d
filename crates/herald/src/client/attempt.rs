//! `herald attempt …`: list delivery attempts and resend a message to an endpoint.

use clap::{Args, Subcommand};
use serde_json::json;

use super::http::segment;
use super::{Connection, output, page_query, print_list};

/// Options of `herald attempt`.
#[derive(Debug, Args)]
pub struct AttemptArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: AttemptCommand,
}

/// What to do with delivery attempts.
#[derive(Debug, Subcommand)]
pub enum AttemptCommand {
    /// List the attempts of one message or to one endpoint.
    List {
        /// The application's id or uid.
        app: String,
        /// Attempts to deliver this message.
        #[arg(long = "msg", required_unless_present = "endpoint", conflicts_with = "endpoint")]
        message: Option<String>,
        /// Attempts made to this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// Attempts per page (1 to 250; the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Where the page starts: the iterator printed after the previous page.
        #[arg(long)]
        iterator: Option<String>,
    },
    /// Deliver a message to an endpoint again: `herald attempt resend APP --msg MSG --endpoint EP`
    /// (the flags of `attempt list`; `herald attempt resend APP MSG EP` works too).
    Resend {
        /// The application's id or uid.
        app: String,
        /// The message to deliver again (id or eventId); or give it with --msg.
        #[arg(value_name = "MSG", conflicts_with = "message")]
        message_arg: Option<String>,
        /// The endpoint to deliver it to (id or uid); or give it with --endpoint.
        #[arg(value_name = "ENDPOINT", conflicts_with = "endpoint", requires = "message_arg")]
        endpoint_arg: Option<String>,
        /// The message to deliver again (id or eventId).
        #[arg(long = "msg")]
        message: Option<String>,
        /// The endpoint to deliver it to (id or uid).
        #[arg(long)]
        endpoint: Option<String>,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("MESSAGE", "msgId"),
    ("ENDPOINT", "endpointId"),
    ("STATUS", "statusText"),
    ("CODE", "responseStatusCode"),
    ("TIMESTAMP", "timestamp"),
];

/// Runs `herald attempt …`.
pub async fn run(args: AttemptArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let connection = &args.connection;
    match args.command {
        AttemptCommand::List { app, message, endpoint, limit, iterator } => {
            let target = match (message, endpoint) {
                (Some(message), _) => format!("msg/{}", segment(&message)),
                (None, Some(endpoint)) => format!("endpoint/{}", segment(&endpoint)),
                (None, None) => anyhow::bail!("give --msg or --endpoint"),
            };
            let query = page_query(limit, iterator.as_deref());
            let answer =
                client.get(&format!("/api/v1/app/{}/attempt/{target}{query}", segment(&app))).await?;
            output(connection, &answer, |value| print_list(value, COLUMNS));
        }
        AttemptCommand::Resend { app, message_arg, endpoint_arg, message, endpoint } => {
            let (message, endpoint) = match (message.or(message_arg), endpoint.or(endpoint_arg)) {
                (Some(message), Some(endpoint)) => (message, endpoint),
                (None, _) => anyhow::bail!(
                    "give the message to resend: herald attempt resend {app} --msg <MSG> --endpoint <ENDPOINT>"
                ),
                (Some(_), None) => anyhow::bail!(
                    "give the endpoint to resend to: herald attempt resend {app} --msg <MSG> --endpoint <ENDPOINT>"
                ),
            };
            let path = format!(
                "/api/v1/app/{}/msg/{}/endpoint/{}/resend",
                segment(&app),
                segment(&message),
                segment(&endpoint)
            );
            let answer = client.post(&path, &json!({})).await?;
            if connection.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                println!("Resending message {message} to endpoint {endpoint}.");
            }
        }
    }
    Ok(())
}
