//! `herald token list|revoke`: API tokens on a running server, through its API (an
//! organisation token is needed). `herald token create` is not here: it writes to the
//! database directly, for an operator who holds no token yet.

use clap::Args;

use super::http::segment;
use super::{Connection, output, page_query, print_list};

/// Options of `herald token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Where the page starts: the iterator printed after the previous page.
    #[arg(long)]
    pub iterator: Option<String>,
}

/// Options of `herald token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The token's id (`tok_…`), as `herald token list` shows it.
    pub token_id: String,
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("SCOPE", "scope"),
    ("APP", "appId"),
    ("DESCRIPTION", "description"),
    ("CREATED", "createdAt"),
    ("EXPIRES", "expiresAt"),
];

/// Runs `herald token list`.
pub async fn list(args: TokenListArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let answer =
        client.get(&format!("/api/v1/token{}", page_query(args.limit, args.iterator.as_deref()))).await?;
    output(&args.connection, &answer, |value| print_list(value, COLUMNS));
    Ok(())
}

/// Runs `herald token revoke`.
pub async fn revoke(args: TokenRevokeArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    client.delete(&format!("/api/v1/token/{}", segment(&args.token_id))).await?;
    if !args.connection.json {
        println!("Revoked token {}.", args.token_id);
    }
    Ok(())
}
