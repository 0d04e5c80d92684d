//! The PostgreSQL server the checks run on, and a schema per check that is dropped after it.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use herald_core::secret::Cipher;
use herald_store_postgres::{PoolSettings, PostgresStore};
use rand::Rng;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;

/// A reachable server.
#[derive(Debug)]
pub(crate) struct Server {
    /// Creates and drops the checks' schemas.
    admin: PgPool,
    /// How to connect, before a schema is chosen.
    options: PgConnectOptions,
    /// The URL without its password, for messages.
    shown: String,
    /// Schema drops still running; awaited before the process exits.
    cleanups: Mutex<Vec<JoinHandle<()>>>,
}

impl Server {
    /// Connects within `timeout`, or says why not.
    pub(crate) async fn reach(url: &str, timeout: Duration) -> Result<Self, String> {
        let options = PgConnectOptions::from_str(url).map_err(|e| format!("invalid URL: {e}"))?;
        // One plain connection first: its error names the cause ("Connection refused"),
        // where a pool would only report that it timed out.
        match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => drop(probe.close().await),
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(format!("no answer within {timeout:?}")),
        }
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { admin, options, shown: redacted(url), cleanups: Mutex::new(Vec::new()) })
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A new empty schema, dropped (best effort) when the returned guard is dropped.
    pub(crate) async fn schema(&self) -> TestSchema<'_> {
        let name = format!("herald_test_{:016x}", rand::thread_rng().r#gen::<u64>());
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&self.admin).await.expect("creates a schema");
        TestSchema { server: self, name }
    }
}

impl Server {
    /// Waits for the schema drops started so far.
    pub(crate) async fn finish(&self) {
        let pending: Vec<_> = std::mem::take(&mut *self.cleanups.lock().unwrap());
        for task in pending {
            drop(task.await);
        }
    }
}

/// A schema of one check. Stores opened on it see only its tables (`search_path`).
#[derive(Debug)]
pub(crate) struct TestSchema<'a> {
    server: &'a Server,
    name: String,
}

impl TestSchema<'_> {
    /// A store on this schema with its own pool: one "node". Every node of a check must use
    /// the same cipher, as every Herald node of one deployment shares its encryption key.
    pub(crate) async fn store_with(&self, cipher: Cipher) -> PostgresStore {
        let options = self.server.options.clone().options([("search_path", self.name.as_str())]);
        let pool = PoolSettings { max_connections: 4, acquire_timeout: Duration::from_secs(30) };
        PostgresStore::open_with(options, pool, cipher).await.expect("opens the store")
    }

    /// A store on this schema with a fresh key.
    pub(crate) async fn store(&self) -> PostgresStore {
        self.store_with(test_cipher()).await
    }
}

impl Drop for TestSchema<'_> {
    fn drop(&mut self) {
        // Dropping is asynchronous; the runner waits for it before exiting. Should it fail, a
        // schema named herald_test_… is left behind, which harms no other run.
        let admin = self.server.admin.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let task = runtime.spawn(async move {
                if let Err(error) = sqlx::query(&sql).execute(&admin).await {
                    eprintln!("could not drop a test schema ({sql}): {error}");
                }
            });
            self.server.cleanups.lock().unwrap().push(task);
        }
    }
}

pub(crate) fn test_cipher() -> Cipher {
    Cipher::from_base64(&Cipher::generate_key_base64()).unwrap()
}

/// The URL with its password (if any) replaced, for messages.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
