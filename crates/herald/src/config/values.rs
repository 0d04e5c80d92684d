//! Parsers of single setting values (durations, database URLs, frame-ancestors sources, CA
//! files): each turns one text into a typed value or a message saying what is expected. No
//! knowledge of where a value came from; `config` names the setting and its source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::DatabaseConfig;

/// Checks CSP `frame-ancestors` sources: `*`, `'self'`, `'none'` (alone), schemes (`https:`) and
/// origins with optional wildcards (`https://*.example.com`, `https://app.example.com:8443`).
/// Anything that could end the directive or add another (`;`, `,`, quotes, spaces inside a
/// source) is refused, so the setting can only ever say who may frame the portal.
pub(super) fn parse_frame_ancestors(value: &str) -> Result<String, String> {
    let sources: Vec<&str> = value.split_whitespace().collect();
    if sources.is_empty() {
        return Err("must name at least one source, e.g. \"'self'\" or \"https://app.example.com\"; \"'none'\" for no site".to_owned());
    }
    if sources.contains(&"'none'") && sources.len() > 1 {
        return Err("'none' must stand alone".to_owned());
    }
    for source in &sources {
        let keyword = matches!(*source, "*" | "'self'" | "'none'");
        let scheme = source.strip_suffix(':').is_some_and(|s| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        let origin = source.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-.*:/_~%".contains(c))
        });
        if !(keyword || scheme || origin) {
            return Err(format!(
                "`{source}` is not a frame-ancestors source (an origin such as https://app.example.com, a scheme such as https:, *, 'self' or 'none')"
            ));
        }
    }
    Ok(sources.join(" "))
}

/// Reads the certificates of a PEM file (`extra_ca_file`); an empty setting means none.
pub(super) fn read_ca_file(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let certificates = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cannot read certificates from `{path}`: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    let mut check = rustls::RootCertStore::empty();
    for (index, certificate) in certificates.iter().enumerate() {
        check
            .add(certificate.clone())
            .map_err(|e| format!("certificate {} in `{path}` cannot be a trust anchor: {e}", index + 1))?;
    }
    Ok(certificates)
}

pub(super) fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() { Err("must be longer than zero".to_owned()) } else { Ok(duration) }
}

pub(super) fn parse_database_url(value: &str, data_dir: &Path) -> Result<DatabaseConfig, String> {
    if value.is_empty() {
        return Ok(DatabaseConfig::Sqlite(data_dir.join("herald.db")));
    }
    if let Some(path) = value.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(
                "a sqlite:// URL needs a file path, e.g. sqlite:///var/lib/herald/herald.db".to_owned()
            );
        }
        return Ok(DatabaseConfig::Sqlite(PathBuf::from(path)));
    }
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        url::Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
        return Ok(DatabaseConfig::Postgres(herald_core::secret::SecretString::new(value)));
    }
    Err("expected an empty value (embedded SQLite), a sqlite:// URL or a postgres:// URL".to_owned())
}

/// Parses `true` or `false`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not true or false")),
    }
}

/// Parses durations such as `250ms`, `90s`, `5m`, `24h`, `7d` (a bare number means seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration such as \"30s\", \"5m\", \"24h\" or \"7d\""))?;
    let millis: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("unknown unit `{other}` in `{value}`; use ms, s, m, h or d")),
    };
    number.checked_mul(millis).map(Duration::from_millis).ok_or_else(|| format!("`{value}` is too long"))
}

/// `script_time_limit`: a positive duration of at most 10 seconds.
pub(super) fn parse_script_time_limit(value: &str) -> Result<Duration, String> {
    let limit = parse_positive_duration(value)?;
    if limit > Duration::from_secs(10) {
        return Err(format!("`{value}` is longer than the most, 10s"));
    }
    Ok(limit)
}

/// `script_memory_limit`: bytes, from 1 MiB to 1 GiB.
pub(super) fn parse_script_memory_limit(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(bytes) if (1 << 20..=1 << 30).contains(&bytes) => Ok(bytes),
        _ => Err(format!("`{value}` is not a number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)")),
    }
}

/// `script_threads`: 1 to 64.
pub(super) fn parse_script_threads(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!("`{value}` is not a number of threads from 1 to 64")),
    }
}

/// A header name Herald may set (not one of the transport's or the signature's).
pub(super) fn parse_header_name(value: &str) -> Result<http::HeaderName, String> {
    herald_core::headers::validate_header(value, "1")?;
    http::HeaderName::try_from(value).map_err(|_| format!("`{value}` is not a header name"))
}
