//! The HTTP/1.1 server loop: accepts connections up to a cap and serves each with hyper,
//! with a header-read timeout, an idle timeout and a bounded shutdown.
//!
//! axum's own `serve` has none of those: a client holding a half-sent request kept a
//! connection, and with it a graceful shutdown, open forever. This loop owns its connection
//! tasks (a `TaskTracker`), so shutdown waits for them for a bounded time and then closes
//! what is left. It spawns nothing outside that tracker.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// Connections served at once; the next is accepted when one closes, so the kernel's
    /// accept queue, not this process, holds the excess.
    pub max_connections: usize,
    /// Time a client has to send a request's headers once the connection waits for one
    /// (slow-header clients would otherwise hold a connection forever).
    pub header_read_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed: a stalled body or
    /// a client that stopped reading.
    pub idle_timeout: Duration,
    /// At shutdown, time given to requests in flight before their connections are closed.
    pub shutdown_grace: Duration,
}

/// After an accept error that is not about one connection (e.g. out of file descriptors),
/// the loop waits this long before accepting again, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `service` on `listener` until `shutdown` is cancelled; then stops accepting, lets
/// requests in flight finish for `settings.shutdown_grace`, closes the connections left and
/// returns.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    settings: ServeSettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let tasks = TaskTracker::new();
    // Cancelled when the grace period is over: every connection still open is dropped.
    let close_now = CancellationToken::new();
    loop {
        // The permit is taken before accepting, so past the cap clients queue in the kernel.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.map_err(io::Error::other)?,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(error = %error, "could not accept a connection");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            () = shutdown.cancelled() => break,
        };
        let connection = Connection {
            service: service.clone(),
            settings,
            tls: tls.clone(),
            shutdown: shutdown.clone(),
            close_now: close_now.clone(),
            _permit: permit,
        };
        tasks.spawn(connection.run(stream, peer));
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(settings.shutdown_grace, tasks.wait()).await.is_err() {
        tracing::info!(
            connections = tasks.len(),
            "closing the connections still open after the shutdown grace period"
        );
        close_now.cancel();
        tasks.wait().await;
    }
    Ok(())
}

/// Accept errors that concern one connection only (it was reset before being accepted).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what it needs to be served and stopped.
struct Connection<S> {
    service: S,
    settings: ServeSettings,
    /// Terminates TLS first when the listener serves HTTPS (`tls_cert_file`).
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Cancelled when the server starts shutting down: finish the request in flight, then close.
    shutdown: CancellationToken,
    /// Cancelled when the grace period is over: close now.
    close_now: CancellationToken,
    /// A slot of `max_connections`, given back when the connection's task ends, however it ends.
    _permit: OwnedSemaphorePermit,
}

impl<S> Connection<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, stream: TcpStream, peer: std::net::SocketAddr) {
        // Responses are written whole; waiting to coalesce small writes only adds latency.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let watched = Watched { stream, activity: activity.clone() };
        let Some(acceptor) = self.tls.clone() else {
            return self.serve_io(watched, activity, peer).await;
        };
        // The handshake gets the time a client has to send its headers; a stop cuts it.
        let handshake = tokio::time::timeout(self.settings.header_read_timeout, acceptor.accept(watched));
        let secured = tokio::select! {
            result = handshake => match result {
                Ok(Ok(secured)) => secured,
                Ok(Err(error)) => {
                    tracing::debug!(error = %error, "a TLS handshake failed");
                    return;
                }
                Err(_) => return,
            },
            () = self.shutdown.cancelled() => return,
            () = self.close_now.cancelled() => return,
        };
        self.serve_io(secured, activity, peer).await;
    }

    /// Serves HTTP/1.1 on a connection (plain, or after the TLS handshake).
    async fn serve_io<I>(self, io: I, activity: Arc<Activity>, peer: std::net::SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let service = self.service;
        let hyper_service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut service = service.clone();
            async move {
                std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                // The peer's address, for handlers that record it (the ingest refusal log).
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                service.call(request).await
            }
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.settings.header_read_timeout);
        let connection = builder.serve_connection(io, hyper_service);
        let mut connection = std::pin::pin!(connection);
        let mut stopping = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(error = %error, "connection ended with an error");
                    }
                    return;
                }
                () = self.shutdown.cancelled(), if !stopping => {
                    // Closes an idle connection now, and a busy one after its response.
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                }
                () = activity.idle_for(self.settings.idle_timeout) => {
                    tracing::debug!("closing a connection idle for longer than idle_connection_timeout");
                    return;
                }
                () = self.close_now.cancelled() => return,
            }
        }
    }
}

/// When bytes last moved on a connection.
#[derive(Debug)]
struct Activity {
    /// The connection's start; `last` counts from it.
    origin: Instant,
    /// Milliseconds from `origin` to the last read or write that moved bytes.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { origin: Instant::now(), last: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    /// Returns once no bytes have moved for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records when bytes move, for the idle timeout.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
