//! The outbound HTTP request of one attempt: signed, authenticated, bounded in time and size,
//! never redirected, and only ever connected to addresses the SSRF guard allowed.
//!
//! Only this module sends outbound HTTP. A failing endpoint is not an error here: every
//! attempt ends in a [`Sent`] describing what happened, which the lane turns into an outcome.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use herald_core::model::Endpoint;
use herald_core::retry::AttemptResult;
use herald_core::signature::signature_header;
use http::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::worker::ssrf::refusal_log::RefusalLog;
use crate::worker::ssrf::{AddressPolicy, Refused, ResolveError, resolve_checked};

/// How the sender behaves; from configuration.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole attempt, from connecting to the end of the body read.
    pub request_timeout: Duration,
    /// Bytes of the response body kept on the attempt.
    pub response_body_limit: usize,
    /// Also send `svix-id`, `svix-timestamp` and `svix-signature`, for Svix receivers.
    pub svix_headers: bool,
    /// Which addresses deliveries may go to.
    pub address_policy: AddressPolicy,
    /// Certificate authorities trusted besides the built-in public roots.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// What happened on the wire: the shared [`Exchange`] that `herald_core::settle` decides from.
pub use herald_core::settle::Exchange as Sent;

/// A message as it is sent: id, payload, and the time the attempt is signed with.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub msg_id: &'a str,
    pub timestamp: i64,
    pub payload: &'a [u8],
}

type Connector = HttpsConnector<HttpConnector<CheckedResolver>>;

/// The shared HTTP client (connection pools per host).
///
/// hyper's pooled client, used directly: a delivery needs none of what a general-purpose
/// client adds per request (redirects, retries, cookies, proxies, decompression), and on the
/// hot path those layers cost more than the request itself (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Sender {
    client: Client<Connector, Full<Bytes>>,
    settings: Arc<SenderSettings>,
    /// Refusals by the SSRF guard are logged (once per endpoint and address for a while) so
    /// the operator sees them, not only the endpoint's owner in its attempts.
    refusals: Arc<RefusalLog>,
}

/// Resolves host names through the SSRF guard, so connections go only to checked addresses.
#[derive(Debug, Clone)]
struct CheckedResolver {
    policy: AddressPolicy,
}

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            // The port is replaced by the URL's port when connecting.
            let addrs = resolve_checked(&policy, name.as_str(), 0).await?;
            Ok(addrs.into_iter())
        })
    }
}

/// Why an attempt got no response, before it is described.
#[derive(Debug)]
enum Failure {
    InvalidUrl(String),
    Client(hyper_util::client::legacy::Error),
    TimedOut,
}

impl Sender {
    pub fn new(settings: SenderSettings) -> Result<Self, rustls::Error> {
        let mut http =
            HttpConnector::new_with_resolver(CheckedResolver { policy: settings.address_policy.clone() });
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_nodelay(true);
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for certificate in &settings.extra_roots {
            roots.add(certificate.clone())?;
        }
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // Without a timer idle connections would only be dropped when next checked out.
            .pool_timer(TokioTimer::new())
            // No cap on idle connections per host below what the lanes already bound: idle
            // connections never outnumber the requests that were in flight to that host at
            // once (endpoint_concurrency per endpoint). A lower cap closes connections as their
            // responses arrive only to open new ones a moment later: with ten endpoints on one
            // host, a cap of 256 meant ~2,800 new TCP connections a second (BENCHMARKS.md).
            .pool_max_idle_per_host(usize::MAX)
            // Reads in 2 KiB steps instead of hyper's adaptive 8 KiB and up: a webhook response
            // is a status line and a few headers, and at most `response_body_limit` of its body
            // is kept. With hundreds of connections open this is megabytes (BENCHMARKS.md).
            .http1_read_buf_exact_size(2048)
            .build(connector);
        Ok(Self { client, settings: Arc::new(settings), refusals: Arc::new(RefusalLog::default()) })
    }

    /// The headers of an attempt: content type, user agent, signatures, the endpoint's custom
    /// headers, and its bearer token.
    pub fn headers(
        &self,
        endpoint: &Endpoint,
        message: Outgoing<'_>,
        signing_time: chrono::DateTime<chrono::Utc>,
    ) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(8 + endpoint.headers.len());
        // Custom headers first, so Herald's own headers always win.
        for (name, value) in &endpoint.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value.expose()))
            {
                headers.insert(name, value);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Herald/", env!("CARGO_PKG_VERSION"))));
        let signature = signature_header(
            endpoint.keys.active(signing_time),
            message.msg_id,
            message.timestamp,
            message.payload,
        );
        let pairs = [
            ("webhook-id", "svix-id", HeaderValue::from_str(message.msg_id)),
            ("webhook-timestamp", "svix-timestamp", Ok(HeaderValue::from(message.timestamp))),
            ("webhook-signature", "svix-signature", HeaderValue::try_from(signature)),
        ];
        for (name, svix, value) in pairs {
            if let Ok(value) = value {
                if self.settings.svix_headers {
                    headers.insert(HeaderName::from_static(svix), value.clone());
                }
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        if let Some(token) = &endpoint.bearer_token
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    /// Makes one attempt.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        url: &url::Url,
        method: http::Method,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Sent {
        let started = Instant::now();
        // The connector does not resolve IP literals, so they are checked here.
        if let Some(ip) = literal_ip(url)
            && let Err(refused) = self.settings.address_policy.check(ip)
        {
            return self.refused(endpoint, &refused, started);
        }
        let exchange = self.exchange(method, url, headers, body);
        let outcome = match tokio::time::timeout(self.settings.request_timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::TimedOut),
        };
        match outcome {
            Ok((status, answer_headers, body)) => Sent {
                result: AttemptResult::Response {
                    status,
                    retry_after: answer_headers.get(RETRY_AFTER).and_then(parse_retry_after),
                },
                status_code: status,
                response: String::from_utf8_lossy(&body).into_owned(),
                duration: started.elapsed(),
                refused: false,
                timed_out: false,
            },
            Err(failure) => match refusal(&failure) {
                Some(refused) => self.refused(endpoint, &refused, started),
                None => self.failure(failure, started),
            },
        }
    }

    /// Sends the consent handshake's `OPTIONS` (no body) through the same guard, within the same
    /// timeouts; the answer's status and headers, or `Err` describing why there was none.
    pub async fn options(&self, endpoint: &Endpoint, headers: HeaderMap) -> Result<(u16, HeaderMap), Sent> {
        let started = Instant::now();
        if let Some(ip) = literal_ip(&endpoint.url)
            && let Err(refused) = self.settings.address_policy.check(ip)
        {
            return Err(self.refused(endpoint, &refused, started));
        }
        let exchange = self.exchange(http::Method::OPTIONS, &endpoint.url, headers, Vec::new());
        match tokio::time::timeout(self.settings.request_timeout, exchange).await {
            Ok(Ok((status, answer_headers, _))) => Ok((status, answer_headers)),
            Ok(Err(failure)) => Err(match refusal(&failure) {
                Some(refused) => self.refused(endpoint, &refused, started),
                None => self.failure(failure, started),
            }),
            Err(_) => Err(self.failure(Failure::TimedOut, started)),
        }
    }

    /// The attempt the SSRF guard refused, logged for the operator.
    fn refused(&self, endpoint: &Endpoint, refused: &Refused, started: Instant) -> Sent {
        self.refusals.note(endpoint, refused);
        refused_attempt(refused.to_string(), started)
    }

    /// Sends the request and reads the status, the headers and the start of the body.
    async fn exchange(
        &self,
        method: http::Method,
        url: &url::Url,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), Failure> {
        let uri = request_uri(url).ok_or_else(|| Failure::InvalidUrl(url.scheme().to_owned()))?;
        // Credentials in the URL are sent as Basic authentication, as browsers and curl do;
        // a bearer token takes precedence.
        if !headers.contains_key(AUTHORIZATION)
            && let Some(value) = basic_auth(url)
        {
            headers.insert(AUTHORIZATION, value);
        }
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = self.client.request(request).await.map_err(Failure::Client)?;
        let (parts, mut body) = response.into_parts();
        let limit = self.settings.response_body_limit;
        let mut kept = Vec::new();
        // Read at most `limit` bytes; the rest of a large body is not waited for.
        while kept.len() < limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(chunk) = frame.data_ref() {
                        kept.extend_from_slice(&chunk[..chunk.len().min(limit - kept.len())]);
                    }
                }
                None => break,
                // The status is what counts; a body cut short is kept as far as it came.
                Some(Err(_)) => break,
            }
        }
        Ok((parts.status.as_u16(), parts.headers, kept))
    }

    fn failure(&self, failure: Failure, started: Instant) -> Sent {
        let (timed_out, response) = match &failure {
            Failure::TimedOut => {
                (true, format!("no response within {} s", self.settings.request_timeout.as_secs_f64()))
            }
            Failure::InvalidUrl(scheme) => {
                (false, format!("request failed: cannot send to a `{scheme}` URL"))
            }
            Failure::Client(error) => (is_timeout(error), describe(error, error.is_connect())),
        };
        Sent {
            result: AttemptResult::NoResponse,
            status_code: 0,
            response,
            duration: started.elapsed(),
            refused: false,
            timed_out,
        }
    }
}

/// The request target of `url`: scheme, host and port, path and query (no credentials, no
/// fragment); `None` for a URL hyper cannot send to.
fn request_uri(url: &url::Url) -> Option<http::Uri> {
    use url::Position;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let target = &url[Position::BeforePath..Position::AfterQuery];
    http::Uri::builder().scheme(url.scheme()).authority(authority).path_and_query(target).build().ok()
}

/// `Authorization: Basic …` for credentials in the URL (`https://user:pass@host/`).
fn basic_auth(url: &url::Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let credentials =
        format!("{}:{}", percent_decode(url.username()), percent_decode(url.password().unwrap_or("")));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Decodes `%XX` escapes (URL user names and passwords are stored percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SSRF guard's refusal behind a failure to connect (a host that resolved only to
/// refused addresses), if that is what it was.
fn refusal(failure: &Failure) -> Option<Refused> {
    let Failure::Client(error) = failure else { return None };
    match find_source::<ResolveError>(error) {
        Some(ResolveError::Refused(refused)) => Some(*refused),
        _ => None,
    }
}

/// Whether a client error comes from running out of time (connecting, here).
fn is_timeout(error: &hyper_util::client::legacy::Error) -> bool {
    find_source::<std::io::Error>(error).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

fn refused_attempt(reason: String, started: Instant) -> Sent {
    Sent {
        result: AttemptResult::NoResponse,
        status_code: 0,
        response: format!("refused by the SSRF guard: {reason}"),
        duration: started.elapsed(),
        refused: true,
        timed_out: false,
    }
}

/// The host of a URL when it is an IP address.
fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// A `Retry-After` of delay-seconds (the HTTP-date form is rare for webhooks and ignored).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    value.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Finds an error of type `T` in `error`'s source chain.
fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// A readable description of a transport error: its deepest cause is the most specific.
fn describe(error: &(dyn std::error::Error + 'static), connect: bool) -> String {
    let mut text = if connect { "connection failed".to_owned() } else { "request failed".to_owned() };
    let mut source = error.source();
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    text.push_str(": ");
    text.push_str(&last.unwrap_or_else(|| error.to_string()));
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use herald_core::id::{ApplicationId, EndpointId};
    use herald_core::model::EndpointKeys;
    use herald_core::secret::SecretString;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::worker::ssrf::Cidr;

    fn settings(allow_loopback: bool, request_timeout: Duration) -> SenderSettings {
        let allowed: Vec<Cidr> = if allow_loopback { vec!["127.0.0.0/8".parse().unwrap()] } else { vec![] };
        SenderSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout,
            response_body_limit: 16,
            svix_headers: true,
            address_policy: AddressPolicy::new(allowed),
            extra_roots: Vec::new(),
        }
    }

    fn endpoint(url: &str) -> Endpoint {
        Endpoint {
            id: EndpointId::generate(),
            app_id: ApplicationId::generate(),
            uid: None,
            url: url.parse().unwrap(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Default::default(),
            keys: EndpointKeys::new(None),
            headers: BTreeMap::from([("x-custom".to_owned(), SecretString::new("yes"))]),
            bearer_token: None,
            ordered: false,
            ordered_on_exhausted: Default::default(),
            consent: None,
            consent_state: None,
            payload_version: None,
            transformation: Default::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    /// Serves one connection on loopback: reads a request head, answers with `response` (or
    /// never, when `None`), and hands back what it read.
    async fn one_shot(response: Option<&'static str>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut read = Vec::new();
            let mut buffer = [0u8; 4096];
            while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                read.extend_from_slice(&buffer[..n]);
            }
            match response {
                Some(response) => stream.write_all(response.as_bytes()).await.unwrap(),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
            String::from_utf8_lossy(&read).into_owned()
        });
        (format!("http://{address}"), served)
    }

    fn outgoing() -> Outgoing<'static> {
        Outgoing { msg_id: "msg_1", timestamp: 1_700_000_000, payload: b"{}" }
    }

    #[test]
    fn the_request_target_drops_credentials_and_fragment_and_keeps_the_query() {
        let url = "https://user:p%40ss@example.com:8443/a/b?x=1&y=2#part".parse().unwrap();
        assert_eq!(request_uri(&url).unwrap().to_string(), "https://example.com:8443/a/b?x=1&y=2");
        let url = "http://[::1]:9000".parse().unwrap();
        assert_eq!(request_uri(&url).unwrap().to_string(), "http://[::1]:9000/");
        assert!(request_uri(&"ftp://example.com/".parse().unwrap()).is_none());
    }

    #[test]
    fn credentials_in_the_url_become_basic_authentication() {
        let url: url::Url = "https://user:p%40ss@example.com/".parse().unwrap();
        let value = basic_auth(&url).unwrap();
        assert!(value.is_sensitive());
        let expected = base64::engine::general_purpose::STANDARD.encode("user:p@ss");
        assert_eq!(value.to_str().unwrap(), format!("Basic {expected}"));
        assert!(basic_auth(&"https://example.com/".parse().unwrap()).is_none());
    }

    #[tokio::test]
    async fn an_attempt_sends_the_signed_request_and_keeps_the_start_of_the_body() {
        let (url, served) =
            one_shot(Some("HTTP/1.1 202 Accepted\r\ncontent-length: 40\r\nretry-after: 7\r\n\r\n0123456789abcdefghijklmnopqrstuvwxyzABCD"))
                .await;
        let sender = Sender::new(settings(true, Duration::from_secs(5))).unwrap();
        let endpoint = endpoint(&format!("{url}/hook?k=v"));
        let headers = sender.headers(&endpoint, outgoing(), chrono::Utc::now());
        let sent = sender.send(&endpoint, &endpoint.url, http::Method::POST, headers, b"{}".to_vec()).await;
        assert_eq!(sent.status_code, 202);
        assert_eq!(
            sent.result,
            AttemptResult::Response { status: 202, retry_after: Some(Duration::from_secs(7)) }
        );
        assert_eq!(sent.response, "0123456789abcdef", "the body is cut at the limit");
        let request = served.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /hook?k=v http/1.1\r\n"), "{request}");
        for header in [
            "content-type: application/json",
            "webhook-id: msg_1",
            "svix-id: msg_1",
            "webhook-timestamp: 1700000000",
            "webhook-signature: v1,",
            "x-custom: yes",
            "user-agent: herald/",
        ] {
            assert!(request.contains(header), "{header} missing from {request}");
        }
    }

    #[tokio::test]
    async fn a_silent_endpoint_times_out_and_a_closed_port_fails_to_connect() {
        let (url, _served) = one_shot(None).await;
        let sender = Sender::new(settings(true, Duration::from_millis(300))).unwrap();
        let silent = endpoint(&url);
        let sent = sender.send(&silent, &silent.url, http::Method::POST, HeaderMap::new(), Vec::new()).await;
        assert_eq!((sent.status_code, sent.timed_out, sent.refused), (0, true, false));
        assert_eq!(sent.result, AttemptResult::NoResponse);
        assert_eq!(sent.response, "no response within 0.3 s");

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let target = endpoint(&format!("http://{address}/"));
        let sent = sender.send(&target, &target.url, http::Method::POST, HeaderMap::new(), Vec::new()).await;
        assert_eq!((sent.status_code, sent.timed_out, sent.refused), (0, false, false));
        assert!(sent.response.starts_with("connection failed: "), "{}", sent.response);
    }

    #[tokio::test]
    async fn loopback_is_refused_by_literal_and_by_name_without_an_exception() {
        let sender = Sender::new(settings(false, Duration::from_secs(2))).unwrap();
        for url in ["http://127.0.0.1:9/", "http://localhost:9/"] {
            let target = endpoint(url);
            let sent =
                sender.send(&target, &target.url, http::Method::POST, HeaderMap::new(), Vec::new()).await;
            assert!(sent.refused, "{url}: {}", sent.response);
            assert!(sent.response.starts_with("refused by the SSRF guard: "), "{}", sent.response);
        }
    }
}
