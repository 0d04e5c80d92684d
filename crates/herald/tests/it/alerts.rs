//! The example Prometheus rules (`docs/alerts/herald.rules.yml`) parse, and name only metrics
//! and labels that a running Herald's `/metrics` serves: a renamed metric can't leave an alert
//! that never fires.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::helpers::TestServer;

const RULES: &str = include_str!("../../../../docs/alerts/herald.rules.yml");

/// Every series name in a scrape, with the label names it carries.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let end = line.find(['{', ' ']).unwrap();
        let labels = names.entry(line[..end].to_owned()).or_default();
        if let Some(rest) = line[end..].strip_prefix('{') {
            labels.extend(label_names(rest));
        }
    }
    names
}

/// The label names of `key="value", key!~"value"}...` (values may hold braces and commas).
fn label_names(matchers: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = matchers.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_')).collect();
        if key.is_empty() {
            return names;
        }
        names.push(key);
        while chars.next_if(|c| matches!(c, '=' | '!' | '~' | ' ')).is_some() {}
        assert_eq!(chars.next(), Some('"'), "a quoted value after {names:?}");
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
}

/// The `herald_*` selectors in a PromQL expression: metric name and the label names matched.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("herald_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let labels = tail[end..].strip_prefix('{').map(label_names).unwrap_or_default();
        found.push((name, labels));
        rest = &tail[end..];
    }
    found
}

#[tokio::test]
async fn alert_rules_parse_and_name_only_exposed_metrics() {
    let server = TestServer::start().await;
    // One request, so the per-route series exist.
    assert!(server.get("/api/v1/app").await.status.is_success());
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let exposed = exposed(&text);

    let rules: Value = serde_yaml::from_str(RULES).unwrap();
    let groups = rules["groups"].as_sequence().unwrap();
    let mut alerts = 0;
    for rule in groups.iter().flat_map(|g| g["rules"].as_sequence().unwrap()) {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{name} has an expr"));
        assert!(rule["labels"]["severity"].is_string(), "{name} has a severity");
        assert!(rule["annotations"]["summary"].is_string(), "{name} has a summary");
        if let Some(wait) = rule.get("for") {
            let wait = wait.as_str().unwrap();
            assert!(wait.ends_with('m') || wait.ends_with('s'), "{name}: for {wait}");
        }
        let used = selectors(expr);
        assert!(!used.is_empty(), "{name} names a Herald metric");
        for (metric, labels) in used {
            let known = exposed.get(&metric).unwrap_or_else(|| panic!("{name}: /metrics has no {metric}"));
            for label in labels {
                assert!(known.contains(&label), "{name}: {metric} has no label {label:?} ({known:?})");
            }
        }
        alerts += 1;
    }
    // The failure modes the rules are there for.
    for wanted in [
        "herald_queue_deliveries",
        "herald_queue_oldest_due_age_seconds",
        "herald_delivery_attempts_total",
        "herald_endpoints_circuit_open",
        "herald_endpoints_disabled",
        "herald_store_commit_duration_seconds_bucket",
    ] {
        assert!(RULES.contains(wanted), "an alert on {wanted}");
    }
    assert!(alerts >= 8, "{alerts} alerts");
}

#[test]
fn selectors_are_read_from_promql() {
    let used =
        selectors(r#"sum(rate(herald_a_total{outcome!="success", route=~"/a/{id},b"}[5m])) / herald_b"#);
    assert_eq!(
        used,
        vec![
            ("herald_a_total".to_owned(), vec!["outcome".to_owned(), "route".to_owned()]),
            ("herald_b".to_owned(), vec![])
        ]
    );
}
