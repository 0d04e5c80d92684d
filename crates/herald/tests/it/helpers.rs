//! A test server: Herald on 127.0.0.1:0 with its own data directory, stopped on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use herald::app::App;
use herald::config::{Config, Overrides};
use herald_core::clock::{Clock, ManualClock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The organisation token every test server accepts.
pub const ADMIN_TOKEN: &str = "sk_test_admin_token_0123456789";

/// A running Herald.
pub struct TestServer {
    pub address: SocketAddr,
    /// Where `/metrics` is served when `HERALD_METRICS_LISTEN` asked for port 0.
    pub metrics_address: Option<SocketAddr>,
    pub client: reqwest::Client,
    data_dir: PathBuf,
    /// Keeps the data directory alive; `None` when the directory belongs to the caller.
    _dir: Option<tempfile::TempDir>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
    clock: Option<Arc<ManualClock>>,
    worker: herald::worker::WorkerHandle,
    /// The PostgreSQL schema holding this server's data, dropped with its data directory.
    schema: Option<String>,
}

/// A response read whole: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// The database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The suite's backend: PostgreSQL when `HERALD_TEST_BACKEND=postgres` (CI runs the suite
    /// both ways), else SQLite.
    pub fn for_suite() -> Self {
        match std::env::var("HERALD_TEST_BACKEND").as_deref() {
            Ok("postgres") => Self::Postgres,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("HERALD_TEST_BACKEND must be sqlite or postgres, not {other}"),
        }
    }
}

/// The PostgreSQL server the suite uses.
fn postgres_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The schema a test's data directory maps to, so a restarted server finds its data again.
fn schema_for(data_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    format!("herald_it_{:016x}", hasher.finish())
}

/// Creates the test's schema and returns a database URL that uses it.
pub async fn postgres_database(data_dir: &Path) -> (String, String) {
    let schema = schema_for(data_dir);
    let mut admin = sqlx::postgres::PgConnection::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| panic!("HERALD_TEST_BACKEND=postgres, but PostgreSQL is not reachable: {e}"));
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let separator = if postgres_url().contains('?') { '&' } else { '?' };
    (format!("{}{separator}options=-c%20search_path%3D{schema}", postgres_url()), schema)
}

/// Drops a test's schema, best effort, from a detached thread: `Drop` can't await, and must
/// not block either (the server being dropped may hold locks the drop has to wait for, and
/// only the test's runtime, which would be blocked, can release them).
pub fn drop_schema(schema: String) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            let Ok(mut admin) = sqlx::postgres::PgConnection::connect(&postgres_url()).await else { return };
            let _ = sqlx::query("SET lock_timeout = '30s'").execute(&mut admin).await;
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut admin).await;
        });
    });
}

/// A key shared by every PostgreSQL test server (PostgreSQL nodes need a configured key).
pub const TEST_ENCRYPTION_KEY: &str = "bXktdGVzdC1rZXktaXMtdGhpcnR5LXR3by1ieXRlcyE=";

/// Settings for a test server beyond the defaults.
#[derive(Debug, Default)]
pub struct Options {
    /// The database; the suite's backend when `None`. Tests of SQLite specifics set it.
    pub backend: Option<Backend>,
    /// Settings as environment variables; they override the test defaults.
    pub env: Vec<(&'static str, String)>,
    /// A clock the test moves by hand; the system clock when `None`.
    pub clock: Option<Arc<ManualClock>>,
    /// The worker's dispatcher runs only when the test calls [`TestServer::step`].
    pub stepped: bool,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_owned();
        let mut server = Self::start_in(&data_dir, options).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing data directory (for restart tests).
    pub async fn start_in(data_dir: &Path, options: Options) -> Self {
        let mut env = vec![
            ("HERALD_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("HERALD_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("HERALD_ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
            // Test receivers listen on loopback, which the SSRF guard refuses by default.
            ("HERALD_ALLOWED_CIDRS".to_owned(), "127.0.0.0/8".to_owned()),
            ("HERALD_REQUEST_TIMEOUT".to_owned(), "5s".to_owned()),
            ("HERALD_LEASE_DURATION".to_owned(), "10s".to_owned()),
            ("HERALD_SHUTDOWN_GRACE".to_owned(), "1s".to_owned()),
        ];
        let backend = options.backend.unwrap_or_else(Backend::for_suite);
        let mut schema = None;
        if backend == Backend::Postgres {
            let (url, name) = postgres_database(data_dir).await;
            env.push(("HERALD_DATABASE_URL".to_owned(), url));
            env.push(("HERALD_ENCRYPTION_KEY".to_owned(), TEST_ENCRYPTION_KEY.to_owned()));
            schema = Some(name);
        }
        // The test's own settings replace the defaults above.
        env.retain(|(key, _)| !options.env.iter().any(|(k, _)| k == key));
        env.extend(options.env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let config = Config::load_from(&Overrides::default(), &env).unwrap();
        let metrics_listen = config.metrics_listen;
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let address = listener.local_addr().unwrap();
        let clock: Arc<dyn Clock> = match &options.clock {
            Some(clock) => clock.clone(),
            None => Arc::new(SystemClock),
        };
        let mut app = App::build_with_clock(config, clock).await.unwrap();
        if options.stepped {
            app.step_worker_by_hand();
        }
        let worker = app.worker();
        let shutdown = CancellationToken::new();
        // A metrics listener on port 0 is bound here, so the test knows the port the kernel picked.
        let metrics_listener = match metrics_listen {
            Some(address) if address.port() == 0 => {
                Some(tokio::net::TcpListener::bind(address).await.unwrap())
            }
            _ => None,
        };
        let metrics_address = metrics_listener.as_ref().map(|l| l.local_addr().unwrap());
        let task = tokio::spawn(app.serve_with_metrics(listener, metrics_listener, shutdown.clone()));
        Self {
            address,
            metrics_address,
            client: reqwest::Client::new(),
            data_dir: data_dir.to_owned(),
            _dir: None,
            shutdown,
            task: Some(task),
            clock: options.clock,
            worker,
            schema,
        }
    }

    /// What the database holds, as text, to check that secrets are not stored in clear: on
    /// SQLite the bytes of the database files (stop the server first so everything is written),
    /// on PostgreSQL every row of every table in this server's schema.
    pub async fn stored_text(&self) -> String {
        let Some(schema) = &self.schema else {
            let mut stored = Vec::new();
            for entry in std::fs::read_dir(&self.data_dir).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with("herald.db") {
                    stored.extend(std::fs::read(path).unwrap());
                }
            }
            return String::from_utf8_lossy(&stored).into_owned();
        };
        let mut admin = sqlx::postgres::PgConnection::connect(&postgres_url()).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        let mut text = String::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {schema}.{table} t"))
                .fetch_all(&mut admin)
                .await
                .unwrap();
            text.extend(rows.into_iter().map(|row| row + "\n"));
        }
        admin.close().await.unwrap();
        text
    }

    /// Runs one SQL statement on this server's database, e.g. to make a row as an earlier
    /// version wrote it: on the SQLite file, or in this server's PostgreSQL schema.
    pub async fn execute_sql(&self, sql: &str) {
        let Some(schema) = &self.schema else {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.data_dir.join("herald.db"))
                .busy_timeout(std::time::Duration::from_secs(10));
            let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            return;
        };
        let mut admin = sqlx::postgres::PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::query(&format!("SET search_path TO {schema}")).execute(&mut admin).await.unwrap();
        sqlx::query(sql).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
    }

    /// Moves the test clock forward and lets the worker look at the queue again.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.as_ref().expect("the server was started with a manual clock").advance(by);
        self.worker.wake();
    }

    /// Runs the (stepped) worker once: leases what is due at the clock's time and waits until
    /// it is settled. `leased == 0` shows that nothing was due, without sleeping.
    pub async fn step(&self) -> herald::worker::StepReport {
        let report = self.worker.step().await;
        assert_eq!(report.unfinished, 0, "every delivery of the step settled: {report:?}");
        report
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server gracefully and waits until it has closed the database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Sends a request with the admin token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(ADMIN_TOKEN, method, path, body).await
    }

    /// Sends a request with the given token ("" for none).
    pub async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an application and returns its id.
    pub async fn create_app(&self, name: &str, uid: Option<&str>) -> String {
        let reply = self.post("/api/v1/app", serde_json::json!({"name": name, "uid": uid})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates an event type.
    pub async fn create_event_type(&self, name: &str) {
        let reply =
            self.post("/api/v1/event-type", serde_json::json!({"name": name, "description": name})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // The schema lives as long as the data directory: a restart test keeps both.
        if self._dir.is_some()
            && let Some(schema) = self.schema.take()
        {
            drop_schema(schema);
        }
    }
}

/// Reads a response whole.
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{status}: body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        })
    };
    Reply { status, headers, body }
}

/// Asserts an error reply: the status, a JSON `{code, detail}` body, and returns the detail.
pub fn assert_error(reply: &Reply, status: StatusCode) -> String {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert!(reply.body["code"].is_string(), "error body has a code: {:?}", reply.body);
    reply.body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("error body has a detail: {:?}", reply.body))
        .to_owned()
}

/// Asserts a 422 and returns the `loc` paths it names, joined with dots.
pub fn assert_validation(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", reply.body);
    let items = reply.body["detail"].as_array().unwrap_or_else(|| panic!("422 body: {:?}", reply.body));
    assert!(!items.is_empty());
    items
        .iter()
        .map(|item| {
            assert!(item["msg"].is_string() && item["type"].is_string(), "{item:?}");
            item["loc"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join(".")
        })
        .collect()
}
