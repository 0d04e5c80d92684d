//! TLS termination on the API listener (`tls_cert_file`, `tls_key_file`): rustls, TLS 1.2
//! and 1.3, with the certificate and key read from PEM files and read again when the files
//! change, so a renewed certificate (certbot, cert-manager) is served without a restart.
//!
//! The files are looked at during handshakes, at most once a second: a changed size or
//! modification time reloads them. A pair that does not load (a renewal caught half-written,
//! a key that does not match) leaves the current certificate in place and is logged once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are looked at, at most.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of a file: its modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// The served certificate, reloaded when its files change.
pub struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    state: Mutex<State>,
}

struct State {
    current: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
    checked: Instant,
    /// The stamps of a pair that failed to load, so it is logged once.
    failed: Option<(Stamp, Stamp)>,
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCertificate").field("cert_file", &self.cert_file).finish_non_exhaustive()
    }
}

/// Reads a certificate chain and its private key; the error names the file and the problem.
fn read_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| format!("the key does not match the certificate: {e}"))?;
    Ok(certified)
}

impl ReloadingCertificate {
    /// Loads the pair; fails (naming the file) when it does not load, so a start with a bad
    /// certificate stops instead of serving nothing.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let stamps = (stamp(cert_file), stamp(key_file));
        let current = Arc::new(read_pair(cert_file, key_file)?);
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            state: Mutex::new(State { current, stamps, checked: Instant::now(), failed: None }),
        })
    }

    /// The certificate to serve now, reloaded first when the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let stamps = (stamp(&self.cert_file), stamp(&self.key_file));
            if stamps != state.stamps && state.failed != Some(stamps) {
                match read_pair(&self.cert_file, &self.key_file) {
                    Ok(pair) => {
                        state.current = Arc::new(pair);
                        state.stamps = stamps;
                        state.failed = None;
                        tracing::info!(file = %self.cert_file.display(), "serving the changed TLS certificate");
                    }
                    Err(error) => {
                        state.failed = Some(stamps);
                        tracing::warn!(error = %error, "the changed TLS certificate did not load; serving the previous one");
                    }
                }
            }
        }
        state.current.clone()
    }

    /// A TLS acceptor serving this certificate (TLS 1.2 and 1.3, HTTP/1.1).
    pub fn acceptor(self) -> Result<tokio_rustls::TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
