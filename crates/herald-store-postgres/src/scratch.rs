//! A scratch schema: a fresh, empty schema in an existing PostgreSQL database, for a run that
//! must not touch anything else there (`herald bench --database-url`), dropped afterwards.
//! Herald nodes use it through a connection URL whose `search_path` names it.

use std::str::FromStr as _;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::OpenError;

/// A schema created for one run.
#[derive(Debug)]
pub struct ScratchSchema {
    /// The database URL as given.
    base_url: String,
    /// The schema's name: `<prefix>_<random>`, letters, digits and underscores only.
    name: String,
}

impl ScratchSchema {
    /// Creates an empty schema named `<prefix>_<random>` in the database at `base_url`.
    pub async fn create(base_url: &str, prefix: &str) -> Result<Self, OpenError> {
        let prefix: String = prefix.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let unique =
            herald_core::id::Ksuid::new(herald_core::clock::system_now()).encode().to_ascii_lowercase();
        let name = format!("{prefix}_{unique}");
        let mut conn = connect(base_url).await?;
        // The name is built above from safe characters only; identifiers can't be bound.
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .map_err(|source| OpenError::Connect { server: redact(base_url), source })?;
        Ok(Self { base_url: base_url.to_owned(), name })
    }

    /// A URL whose connections work in this schema (`search_path`).
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base_url, self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bytes of WAL the whole server wrote since its statistics were last reset
    /// (`pg_stat_wal`), to subtract from a later reading: what a run cost the server's log.
    pub async fn wal_bytes(&self) -> Result<u64, OpenError> {
        let mut conn = connect(&self.base_url).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT wal_bytes::bigint FROM pg_stat_wal")
            .fetch_one(&mut conn)
            .await
            .map_err(|source| OpenError::Connect { server: redact(&self.base_url), source })?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(self) -> Result<(), OpenError> {
        let mut conn = connect(&self.base_url).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .execute(&mut conn)
            .await
            .map_err(|source| OpenError::Connect { server: redact(&self.base_url), source })?;
        Ok(())
    }
}

async fn connect(url: &str) -> Result<PgConnection, OpenError> {
    let options = PgConnectOptions::from_str(url).map_err(OpenError::InvalidUrl)?;
    PgConnection::connect_with(&options)
        .await
        .map_err(|source| OpenError::Connect { server: redact(url), source })
}

/// `host:port/database` of `url`, never its password.
fn redact(url: &str) -> String {
    PgConnectOptions::from_str(url)
        .map(|o| crate::describe(&o))
        .unwrap_or_else(|_| "(invalid URL)".to_owned())
}
