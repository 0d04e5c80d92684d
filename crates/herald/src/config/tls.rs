//! HTTPS settings of the API listener: `tls_cert_file` and `tls_key_file`, both or neither.

use std::path::PathBuf;

use super::{ConfigError, Raw, field};

/// The PEM files of the API listener's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `tls_cert_file` and `tls_key_file`: both, or neither.
pub(super) fn parse_tls(raw: &Raw) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = field(raw, "tls_cert_file", |v| Ok(v.to_owned()))?;
    let key = field(raw, "tls_key_file", |v| Ok(v.to_owned()))?;
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(TlsFiles { cert_file: cert.into(), key_file: key.into() })),
        (false, true) => field(raw, "tls_key_file", |_| Err("is needed with tls_cert_file".to_owned())),
        (true, false) => field(raw, "tls_cert_file", |_| Err("is needed with tls_key_file".to_owned())),
    }
}
