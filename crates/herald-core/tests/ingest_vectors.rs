//! Herald's ingest verifiers against the providers' official libraries: every fixture in
//! `tests/ingest_vectors/` is a set of requests signed and judged by a provider's own library
//! (made by `tests/ingest_vectors/generate.sh`), and Herald must judge each one as that library
//! did. The fixtures are committed, so this needs nothing but the Rust toolchain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::DateTime;
use herald_core::ingest::verify::{self, Request, Scheme};
use herald_core::ingest::{SourceConfig, SourceType};
use serde::Deserialize;

/// Source types whose providers publish no library that signs or verifies their webhooks:
/// their verifiers are checked by their unit tests against the schemes' documentation.
const WITHOUT_OFFICIAL_LIBRARY: &[(&str, &str)] = &[
    ("generic-webhook", "Herald's own scheme (a bearer token or basic authentication)"),
    ("segment", "Segment publishes no library that signs or verifies X-Signature"),
    ("docusign", "DocuSign's eSignature SDKs do not verify Connect's HMAC signatures"),
];

/// One provider's cases, as the generator writes them.
#[derive(Debug, Deserialize)]
struct Fixture {
    /// The file's name without `.json`.
    source: String,
    /// The source types the cases apply to (the Svix-signed providers share Svix's).
    types: Vec<String>,
    /// Package name to version: the library that signed and judged the cases.
    library: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
    body: String,
    config: SourceConfig,
    /// The time (Unix seconds) the library judged the request at.
    now: i64,
    /// `accepted`, a refusal reason's name, or `refused` where the library gives no reason.
    verdict: String,
    /// What the provider's URL check is answered with, where the library answers one.
    #[serde(default)]
    challenge: Option<serde_json::Value>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ingest_vectors");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the fixtures' directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter(|path| !path.ends_with("package.json") && !path.ends_with("package-lock.json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("a readable fixture");
            let fixture: Fixture =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path:?}: {error}"));
            assert_eq!(Some(fixture.source.as_str()), path.file_stem().and_then(|s| s.to_str()));
            fixture
        })
        .collect()
}

/// Herald's verdict on a case, in the fixtures' words: a configuration Herald would not accept
/// for the source is a refusal too (such a source could not exist).
fn herald_verdict(scheme: Scheme, case: &Case) -> Result<(), String> {
    verify::check_config(scheme, &case.config).map_err(|why| format!("config refused: {why}"))?;
    let headers: Vec<(String, String)> =
        case.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect();
    let request =
        Request { method: &case.method, url: &case.url, headers: &headers, body: case.body.as_bytes() };
    let now = DateTime::from_timestamp(case.now, 0).expect("a time in range");
    verify::verify(scheme, &case.config, &request, now).map_err(|reason| reason.name().to_owned())
}

fn agrees(verdict: &str, herald: &Result<(), String>) -> bool {
    match (verdict, herald) {
        ("accepted", result) => result.is_ok(),
        ("refused", result) => result.is_err(),
        (reason, Err(given)) => reason == given,
        (_, Ok(())) => false,
    }
}

#[test]
fn herald_judges_every_request_as_the_providers_library_does() {
    let mut disagreements = Vec::new();
    let mut judged = 0;
    for fixture in fixtures() {
        for type_name in &fixture.types {
            let scheme = SourceType::parse(type_name).expect("a known type").scheme();
            for case in &fixture.cases {
                judged += 1;
                let herald = herald_verdict(scheme, case);
                if !agrees(&case.verdict, &herald) {
                    disagreements.push(format!(
                        "{type_name} / {}: {:?} says {}, Herald says {herald:?}",
                        case.name, fixture.library, case.verdict
                    ));
                }
                if let Some(expected) = &case.challenge {
                    let headers: Vec<(String, String)> =
                        case.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
                    let request = Request {
                        method: &case.method,
                        url: &case.url,
                        headers: &headers,
                        body: case.body.as_bytes(),
                    };
                    let answer = verify::challenge(scheme, &case.config, &request);
                    if answer.as_ref() != Some(expected) {
                        disagreements.push(format!(
                            "{type_name} / {}: the library answers {expected}, Herald {answer:?}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    assert!(judged > 100, "only {judged} cases were judged");
    assert!(
        disagreements.is_empty(),
        "Herald disagrees with the official libraries:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn every_source_type_with_an_official_library_has_its_vectors() {
    let fixtures = fixtures();
    let covered: BTreeSet<&str> = fixtures.iter().flat_map(|f| f.types.iter().map(String::as_str)).collect();
    let without: BTreeSet<&str> = WITHOUT_OFFICIAL_LIBRARY.iter().map(|(name, _)| *name).collect();
    for name in verify::type_names() {
        assert!(
            covered.contains(&name) != without.contains(&name),
            "`{name}` must have vectors from its provider's library (generate.sh) or be listed, with a \
             reason, in WITHOUT_OFFICIAL_LIBRARY (and not both)"
        );
    }
    for name in covered.iter().chain(&without) {
        assert!(Scheme::of(name).is_some(), "`{name}` is not a source type");
    }
    for fixture in &fixtures {
        assert!(!fixture.library.is_empty(), "{} names no library", fixture.source);
        let accepted = fixture.cases.iter().filter(|case| case.verdict == "accepted").count();
        assert!(
            accepted > 0 && accepted < fixture.cases.len(),
            "{} needs requests the library accepts and requests it refuses",
            fixture.source
        );
    }
}
