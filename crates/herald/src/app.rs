//! Wiring: opens the store named by the configuration, makes sure an admin token exists, and
//! serves the API until shutdown.
//!
//! Entry points take their dependencies (`App::build(config)`, `serve(listener, shutdown)`),
//! so tests start servers on port 0 without sleeping for readiness.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use herald_core::id::TokenId;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::secret::{Cipher, SecretString};
use herald_core::stats::{CommitObserver, NoObserver};
use herald_core::token::{ORGANIZATION_TOKEN_PREFIX, TokenHash, generate_token_value};
use herald_core::{Store, StoreError};
use herald_store_postgres::{PoolSettings, PostgresStore};
use herald_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;
use tower_http::normalize_path::NormalizePathLayer;

use herald_core::clock::{Clock, SystemClock};
use herald_core::retry::RetrySchedule;

use crate::api::serve::ServeSettings;
use crate::api::{self, ApiShared, ApiState, RouterSettings};
use crate::config::{Config, DatabaseConfig};
use crate::metrics::Metrics;
use crate::worker::consent::ConsentSettings;
use crate::worker::operational::{OperationalTarget, OperationalWebhooks};
use crate::worker::sender::SenderSettings;
use crate::worker::ssrf::AddressPolicy;
use crate::worker::{self, WorkerHandle, WorkerSettings};

/// Name of the generated encryption key file in the data directory.
const KEY_FILE: &str = "encryption.key";
/// Name of the lock file that keeps a second server off the same data directory.
const LOCK_FILE: &str = "herald.lock";
/// Deliveries leased per store call at most.
const LEASE_BATCH: u32 = 512;
/// Backstop for waking the worker when nothing else does.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why Herald could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not create the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not read or write the encryption key file {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the encryption key in {path} is invalid: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error(
        "the database {database} exists but the encryption key file {key} does not; restore the key \
         file or set `encryption_key`, otherwise stored secrets can't be read"
    )]
    MissingKey { database: PathBuf, key: PathBuf },
    #[error("another Herald is serving from this data directory (it holds {path})")]
    Locked { path: PathBuf },
    #[error(transparent)]
    Open(#[from] herald_store_sqlite::OpenError),
    #[error(transparent)]
    OpenPostgres(#[from] herald_store_postgres::OpenError),
    #[error(
        "with PostgreSQL every node must share one encryption key: set `encryption_key` \
         (HERALD_ENCRYPTION_KEY) to the same value on every node; `herald key generate` makes one"
    )]
    SharedKeyRequired,
    #[error("could not prepare the database (leases, API tokens)")]
    Prepare(#[source] StoreError),
}

/// A Herald instance, opened and ready to serve.
#[derive(Debug)]
pub struct App {
    config: Config,
    /// The database, as the rest of Herald sees it: which backend it is, only `open_store` knows.
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    worker: WorkerHandle,
    /// The one set of metrics, shared by the API (which serves it) and the worker.
    metrics: Arc<Metrics>,
    /// Held while serving from SQLite: one serving process per data directory.
    _lock: Option<std::fs::File>,
    /// An organisation token created at this start (the first start), to show once.
    pub new_admin_token: Option<SecretString>,
    /// The worker's dispatcher runs only when stepped by hand (`WorkerHandle::step`): tests.
    stepped_worker: bool,
}

impl App {
    /// Opens the database (applying migrations) and prepares tokens.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`App::build`], with the clock the server reads time from (tests move it by hand).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        create_private_dir(&config.data_dir)
            .map_err(|source| StartError::DataDir { path: config.data_dir.clone(), source })?;
        let lock = match config.database {
            DatabaseConfig::Sqlite(_) => Some(lock_data_dir(&config.data_dir)?),
            DatabaseConfig::Postgres(_) => None,
        };
        let metrics = Arc::new(Metrics::new());
        let store = open_store_observed(&config, metrics.clone()).await?;
        // Deliveries a dead predecessor left leased are due again now, where the store can know
        // that (SQLite, whose data directory only this process serves); elsewhere leases expire.
        let released = store.resume_interrupted().await.map_err(StartError::Prepare)?;
        if released > 0 {
            tracing::info!(deliveries = released, "resuming deliveries interrupted by the previous run");
        }
        // Endpoints saved by versions before URL credentials were sealed still hold them in
        // the URL column: seal them now, so no credential stays in clear in the database.
        let sealed = store.seal_clear_url_credentials().await.map_err(StartError::Prepare)?;
        if sealed > 0 {
            tracing::info!(
                endpoints = sealed,
                "sealed endpoint URL credentials an earlier version stored in clear"
            );
        }
        let new_admin_token =
            ensure_admin_token(store.as_ref(), &config).await.map_err(StartError::Prepare)?;
        Ok(Self {
            config,
            store,
            clock,
            worker: WorkerHandle::new(),
            metrics,
            _lock: lock,
            new_admin_token,
            stepped_worker: false,
        })
    }

    /// Makes the worker's dispatcher run only when stepped by hand (`WorkerHandle::step`), so a
    /// test decides when the queue is looked at, with its manual clock.
    pub fn step_worker_by_hand(&mut self) {
        self.stepped_worker = true;
    }

    /// Wakes the worker (tests call it after moving their clock).
    pub fn worker(&self) -> WorkerHandle {
        self.worker.clone()
    }

    /// Serves the API on `listener` until `shutdown` is cancelled, then finishes the requests
    /// in flight and closes the database.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
        self.serve_with_metrics(listener, None, shutdown).await
    }

    /// Like [`App::serve`], with `/metrics` and the probes on `metrics_listener` when given
    /// (already bound, e.g. to port 0 by a test) instead of binding `metrics_listen`.
    pub async fn serve_with_metrics(
        self,
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let bound = listener.local_addr()?;
        // HTTPS on the API listener when configured; a certificate that does not load stops
        // the start here, before anything is served.
        let tls = match &self.config.tls {
            Some(files) => Some(
                api::tls::ReloadingCertificate::load(&files.cert_file, &files.key_file)
                    .and_then(api::tls::ReloadingCertificate::acceptor)
                    .map_err(|e| io::Error::other(format!("TLS certificate: {e}")))?,
            ),
            None => None,
        };
        let store = self.store.clone();
        let delivery = &self.config.delivery;
        let role = self.config.role;
        // Background work of the app (operational webhooks, the use cases' recover tasks, the
        // metrics listener), waited for at shutdown.
        let service_tasks = tokio_util::task::TaskTracker::new();
        let operational = match &delivery.operational_webhook {
            Some((url, secret)) => OperationalWebhooks::start(
                OperationalTarget { url: url.clone(), secret: secret.clone() },
                &service_tasks,
                shutdown.clone(),
            ),
            None => OperationalWebhooks::disabled(),
        };
        // Converters and transformations run on threads of their own, for the API (checks,
        // simulations) and the worker alike.
        let scripts = crate::scripts::Scripts::new(
            herald_script::Engine::start(delivery.script_threads, delivery.script_limits)?,
            store.clone(),
        );
        let worker_tasks = if role.delivers() {
            let tasks = worker::start(
                &self.worker,
                store.clone(),
                scripts.clone(),
                self.clock.clone(),
                WorkerSettings { stepped: self.stepped_worker, ..worker_settings(&self.config, bound) },
                operational.clone(),
                self.metrics.clone(),
                shutdown.clone(),
            )
            .map_err(io::Error::other)?;
            // New work committed by other nodes sharing the store wakes this node's worker.
            tasks.reopen();
            tasks.spawn(wake_on_new_work(store.clone(), self.worker.clone(), shutdown.clone()));
            tasks.close();
            Some(tasks)
        } else {
            None
        };
        let state = ApiState::new(ApiShared {
            store,
            clock: self.clock.clone(),
            worker: self.worker.clone(),
            public_url: self.config.public_base_url(bound),
            consent: delivery.consent,
            address_policy: crate::worker::ssrf::AddressPolicy::new(delivery.allowed_cidrs.clone()),
            refuse_unroutable_endpoints: delivery.refuse_unroutable_endpoints,
            operational,
            portal_token_ttl: self.config.portal_token_ttl,
            portal_frame_ancestors: self.config.portal_frame_ancestors.clone(),
            payload_retention: delivery.payload_retention,
            metrics: self.metrics.clone(),
            shutdown: shutdown.clone(),
            tasks: service_tasks.clone(),
            scripts,
            validate_payloads: delivery.validate_payloads,
            ingest: self.config.ingest,
            endpoint_https_only: delivery.endpoint_https_only,
        });
        // Prometheus on a listener of its own when configured, bound before the API answers.
        let metrics_listener = match (metrics_listener, self.config.metrics_listen) {
            (Some(bound), _) => Some(bound),
            (None, Some(address)) => Some(TcpListener::bind(address).await?),
            (None, None) => None,
        };
        let http = &self.config.http;
        let serve_settings = ServeSettings {
            max_connections: http.max_connections,
            header_read_timeout: http.header_read_timeout,
            idle_timeout: http.idle_connection_timeout,
            shutdown_grace: http.shutdown_grace,
        };
        let metrics_server = match metrics_listener {
            Some(metrics_listener) => {
                tracing::info!(address = %metrics_listener.local_addr()?, "serving metrics");
                let router = api::metrics_router(state.clone());
                Some(service_tasks.spawn(api::serve::serve(
                    metrics_listener,
                    router,
                    serve_settings,
                    None,
                    shutdown.clone(),
                )))
            }
            None => None,
        };
        let router = if role.serves_api() {
            let settings = RouterSettings {
                max_body_bytes: self.config.max_body_bytes,
                max_concurrent_requests: http.max_concurrent_requests,
                metrics_elsewhere: metrics_server.is_some(),
            };
            api::router(state, settings)
        } else {
            api::health_router(state)
        };
        // Trailing slashes are trimmed before routing, so `/api/v1/app/` is `/api/v1/app`.
        let service = axum::middleware::from_fn(api::ui::canonical_page_paths)
            .layer(NormalizePathLayer::trim_trailing_slash().layer(router));
        if role.serves_api() {
            // Where a newcomer goes next: the dashboard and the API reference. A wildcard
            // address is reached locally through loopback.
            let local = match bound.ip() {
                ip if ip.is_unspecified() => {
                    std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
                }
                _ => bound,
            };
            let base = match &self.config.public_url {
                Some(_) => self.config.public_base_url(bound),
                None => format!("http://{local}"),
            };
            tracing::info!(
                address = %bound,
                role = ?role,
                dashboard = %format!("{base}/ui"),
                docs = %format!("{base}/docs"),
                "Herald is serving"
            );
        } else {
            tracing::info!(address = %bound, role = ?role, "Herald is serving");
        }
        // Returns once every connection is closed: finished, or cut at the grace period's end.
        api::serve::serve(listener, service, serve_settings, tls, shutdown).await?;
        if let Some(metrics_server) = metrics_server {
            metrics_server.await.map_err(io::Error::other)??;
        }
        // The API has stopped accepting; the worker stops leasing and lets attempts finish.
        if let Some(tasks) = worker_tasks {
            tasks.wait().await;
        }
        service_tasks.close();
        if tokio::time::timeout(delivery.shutdown_grace, service_tasks.wait()).await.is_err() {
            tracing::warn!("background tasks still running after the shutdown grace period");
        }
        self.store.close().await;
        tracing::info!("Herald stopped");
        Ok(())
    }
}

/// The worker's settings from the configuration.
fn worker_settings(config: &Config, bound: std::net::SocketAddr) -> WorkerSettings {
    let delivery = &config.delivery;
    let to_chrono = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    WorkerSettings {
        endpoint_concurrency: delivery.endpoint_concurrency,
        max_attempts_in_flight: delivery.max_attempts_in_flight,
        circuit_breaker_failures: delivery.circuit_breaker_failures,
        lease_batch: LEASE_BATCH,
        lease_duration: to_chrono(delivery.lease_duration),
        poll_interval: POLL_INTERVAL,
        retry: RetrySchedule { delays: delivery.retry_schedule.clone(), ..RetrySchedule::default() },
        disable_after: to_chrono(delivery.disable_endpoint_after),
        message_retention: to_chrono(delivery.message_retention),
        attempt_retention: to_chrono(delivery.attempt_retention),
        shutdown_grace: delivery.shutdown_grace,
        sender: SenderSettings {
            connect_timeout: delivery.connect_timeout,
            request_timeout: delivery.request_timeout,
            response_body_limit: delivery.max_response_body_bytes,
            svix_headers: delivery.svix_headers,
            address_policy: AddressPolicy::new(delivery.allowed_cidrs.clone()),
            extra_roots: delivery.extra_roots.clone(),
        },
        consent: ConsentSettings {
            mode: delivery.consent,
            origin: config.consent_origin(bound),
            callback_base: config.public_base_url(bound),
        },
        payload_version_header: delivery.payload_version_header.clone(),
        stepped: false,
    }
}

/// Takes the data directory's lock file, or says who holds it.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StartError> {
    let path = data_dir.join(LOCK_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(|source| StartError::KeyFile { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::KeyFile { path, source }),
    }
}

/// Wakes this node's worker whenever any node commits new deliveries (PostgreSQL NOTIFY).
async fn wake_on_new_work(store: Arc<dyn Store>, worker: WorkerHandle, shutdown: CancellationToken) {
    loop {
        let wake = || worker.wake();
        let listening = store.listen_for_new_work(&wake);
        tokio::select! {
            result = listening => {
                if let Err(error) = result {
                    tracing::warn!(error = %error, "lost the new-work notifications; polling until they are back");
                }
            }
            () = shutdown.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Opens the configured database, creating the data directory and encryption key as needed.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    open_store_observed(config, Arc::new(NoObserver)).await
}

/// Like [`open_store`], telling `observer` about the SQLite writer's group commits.
pub async fn open_store_observed(
    config: &Config,
    observer: Arc<dyn CommitObserver>,
) -> Result<Arc<dyn Store>, StartError> {
    create_private_dir(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.clone(), source })?;
    match &config.database {
        DatabaseConfig::Sqlite(path) => {
            let cipher = load_cipher(config, path)?;
            Ok(Arc::new(SqliteStore::open_observed(path, cipher, observer).await?))
        }
        DatabaseConfig::Postgres(url) => {
            // Every node must read what the others sealed: the key can't be a local file.
            let key = config.encryption_key.as_ref().ok_or(StartError::SharedKeyRequired)?;
            let cipher = Cipher::from_base64(key.expose()).map_err(|e| StartError::BadKeyFile {
                path: PathBuf::from("(configuration)"),
                reason: e.to_string(),
            })?;
            let pool =
                PoolSettings { max_connections: config.database_max_connections, ..PoolSettings::default() };
            Ok(Arc::new(PostgresStore::open_url(url.expose(), pool, cipher).await?))
        }
    }
}

fn load_cipher(config: &Config, database: &Path) -> Result<Cipher, StartError> {
    if let Some(key) = &config.encryption_key {
        // Validated when the configuration was parsed.
        return Cipher::from_base64(key.expose()).map_err(|e| StartError::BadKeyFile {
            path: PathBuf::from("(configuration)"),
            reason: e.to_string(),
        });
    }
    let path = config.data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Cipher::from_base64(&text).map_err(|e| StartError::BadKeyFile { path, reason: e.to_string() })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if database.exists() {
                return Err(StartError::MissingKey { database: database.to_owned(), key: path });
            }
            let key = Cipher::generate_key_base64();
            write_private_file(&path, &key)
                .map_err(|source| StartError::KeyFile { path: path.clone(), source })?;
            tracing::info!(path = %path.display(), "generated a new encryption key; back it up with the database");
            Cipher::from_base64(&key).map_err(|e| StartError::BadKeyFile { path, reason: e.to_string() })
        }
        Err(source) => Err(StartError::KeyFile { path, source }),
    }
}

/// Creates the data directory (and missing parents) accessible to its owner only: it holds
/// the database and the encryption key. An existing directory keeps its permissions.
fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Writes a file readable by its owner only.
fn write_private_file(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Registers the configured admin token, and creates one on the very first start.
async fn ensure_admin_token(store: &dyn Store, config: &Config) -> Result<Option<SecretString>, StoreError> {
    if let Some(token) = &config.admin_token {
        let hash = TokenHash::of(token.expose());
        if store.find_token(&hash).await?.is_none() {
            insert_organization_token(store, hash, "from the admin_token setting").await?;
        }
        return Ok(None);
    }
    if store.count_organization_tokens().await? > 0 {
        return Ok(None);
    }
    create_organization_token(store, "created at first start").await.map(Some)
}

/// Creates a new organisation token and returns its value (shown once; only a hash is kept).
pub async fn create_organization_token(
    store: &dyn Store,
    description: &str,
) -> Result<SecretString, StoreError> {
    let value = generate_token_value(ORGANIZATION_TOKEN_PREFIX);
    insert_organization_token(store, TokenHash::of(value.expose()), description).await?;
    Ok(value)
}

async fn insert_organization_token(
    store: &dyn Store,
    hash: TokenHash,
    description: &str,
) -> Result<(), StoreError> {
    let token = ApiToken {
        id: TokenId::generate(),
        hash,
        scope: TokenScope::Organization,
        description: description.to_owned(),
        created_at: herald_core::model::now(),
        expires_at: None,
        session_id: None,
    };
    store.insert_token(&token).await
}
