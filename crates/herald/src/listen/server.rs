//! The receiving side of `herald listen`: binds 127.0.0.1, and for each request prints it,
//! verifies it when a secret is given, stores it, forwards it when asked, and answers the
//! sender. Never binds anything but loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use herald_receiver::Verifier;
use serde_json::json;

use super::ReceiveArgs;
use super::forward::{self, ForwardOutcome, ForwardUrl};
use super::print;
use super::store::{StoreFile, StoredWebhook};

/// What every request handler shares.
struct Listener {
    /// Checks signatures when `--secret` was given.
    verifier: Option<Verifier>,
    /// The local app to pass requests on to, with the client that does it.
    forward: Option<(ForwardUrl, reqwest::Client)>,
    /// Where received requests are appended.
    store: StoreFile,
}

/// Listens until Ctrl-C.
pub(crate) async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let mut verifier = match &args.secret {
        Some(secret) => Some(Verifier::new(secret).context("the --secret is not a valid signing secret")?),
        None => None,
    };
    let store = StoreFile::open(&args.store)?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let tcp = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("could not listen on {address}"))?;
    let bound = tcp.local_addr().context("could not read the bound address")?;
    println!("herald listen: listening on http://{bound}/ (any path, POST)");
    println!("   store: {}", store.path().display());
    match &args.forward_to {
        Some(target) => println!("   forwarding to {}", target.as_str()),
        None => println!("   not forwarding (answering 200)"),
    }
    let attached = match &args.source {
        Some(source) => {
            let attached = Attached::add(&args.connection, source, bound).await?;
            println!(
                "   attached to source {source} as destination {} (removed when this stops)",
                attached.id
            );
            if verifier.is_none() {
                verifier =
                    Some(Verifier::new(&attached.secret).context("the destination's secret is not valid")?);
            }
            Some(attached)
        }
        None => None,
    };
    if verifier.is_some() {
        println!("   verifying signatures (401 on failure)");
    }
    let state = Arc::new(Listener {
        verifier,
        forward: args.forward_to.map(|target| (target, forward::client())),
        store,
    });
    let app = axum::Router::new().fallback(receive).with_state(state);
    let served = axum::serve(tcp, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the listener failed");
    if let Some(attached) = attached {
        attached.remove().await;
    }
    served
}

/// A destination of an ingest source that points at this listener.
struct Attached {
    client: crate::client::ApiClient,
    path: String,
    id: String,
    secret: String,
}

impl Attached {
    /// Adds a destination for `bound` to `source`, and reads its signing secret.
    async fn add(
        connection: &crate::client::Connection,
        source: &str,
        bound: SocketAddr,
    ) -> anyhow::Result<Self> {
        let client = connection.client()?;
        let base = format!("/ingest/api/v1/source/{}/endpoint", crate::client::segment(source));
        let body = json!({ "url": format!("http://{bound}/"), "description": "herald listen" });
        let created = client.post(&base, &body).await.context("could not add a destination to the source")?;
        let id = created["id"].as_str().context("the server returned no destination id")?.to_owned();
        let path = format!("{base}/{id}");
        let secret = client.get(&format!("{path}/secret")).await?["key"]
            .as_str()
            .context("the server returned no secret")?
            .to_owned();
        Ok(Self { client, path, id, secret })
    }

    /// Deletes the destination (best effort: a listener that was killed leaves it behind).
    async fn remove(self) {
        match self.client.delete(&self.path).await {
            Ok(_) => println!("herald listen: removed destination {}", self.id),
            Err(error) => eprintln!("herald listen: could not remove destination {}: {error}", self.id),
        }
    }
}

/// Handles one request of any method on any path.
async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let stored = StoredWebhook::received(method.as_str(), &path, &headers, &body);
    let mut report = print::request(stored.received_at, method.as_str(), &path, &headers, &body);
    let mut push = |line: String| {
        report.push_str(&line);
        report.push('\n');
    };
    if let Err(error) = listener.store.append(&stored) {
        push(format!("store: {error:#}"));
    }

    if let Some(verifier) = &listener.verifier {
        let verified = verifier.verify(&headers, &body).map(|_| ());
        push(print::verification(&verified));
        if let Err(error) = verified {
            print!("{report}");
            let body = json!({"code": error.code(), "detail": print::reason(&error)});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }

    let status = match &listener.forward {
        None => StatusCode::OK,
        Some((target, client)) => {
            let outcome = forward::forward(client, target, method, &headers, body).await;
            push(print::forwarded(target.as_str(), &outcome));
            match outcome {
                ForwardOutcome::Answered { status, .. } => {
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                ForwardOutcome::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            }
        }
    };
    // One print per request, so concurrent requests never interleave their lines.
    print!("{report}");
    status.into_response()
}
