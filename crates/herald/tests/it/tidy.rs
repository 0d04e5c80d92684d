//! The invariants ARCHITECTURE.md promises, checked over the source tree (as rust-analyzer's
//! tidy test does): no task spawned outside a tracker, no clock read outside `clock.rs`, a `//!`
//! on every module, no source file over 600 lines, and a code map that names every module.
//!
//! Test code is exempt from the first two rules: a file's part from its `#[cfg(test)]` on, and
//! `tests.rs` files.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The workspace's `crates/` directory.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.rs` file under each crate's `src/`, as (path relative to `crates/`, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let crates = crates_dir();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            walk(&src, &mut files);
        }
    }
    files.sort();
    let relative = |p: &Path| p.strip_prefix(&crates).unwrap().to_string_lossy().replace('\\', "/");
    files.iter().map(|p| (relative(p), std::fs::read_to_string(p).unwrap())).collect()
}

/// A file's code without its tests.
fn non_test_part<'a>(path: &str, text: &'a str) -> &'a str {
    if path.ends_with("/tests.rs") {
        return "";
    }
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

/// Lines of `text` containing `needle`, as "path:line".
fn occurrences(path: &str, text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle) && !line.trim_start().starts_with("//"))
        .map(|(n, _)| format!("{path}:{}", n + 1))
        .collect()
}

#[test]
fn tasks_are_spawned_only_on_a_tracker() {
    // The process-wide signal listener (main.rs) and the OTLP exporter (which must outlive the
    // app to flush its spans) live as long as the process; `herald bench` is a load generator
    // beside the server, not part of it; PostgreSQL's attempt-record and message-intake
    // batchers belong to the store and end when its last handle is dropped; the examples are
    // users' programs.
    let exempt = [
        "herald/src/main.rs",
        "herald/src/otlp.rs",
        "herald/src/bench/",
        "herald-store-postgres/src/records.rs",
        "herald-store-postgres/src/intake.rs",
        "herald-examples/",
    ];
    let mut found = Vec::new();
    for (path, text) in sources() {
        if exempt.iter().any(|e| path.starts_with(e)) {
            continue;
        }
        let code = non_test_part(&path, &text);
        for needle in ["tokio::spawn(", "thread::spawn(", "tokio::task::spawn("] {
            found.extend(occurrences(&path, code, needle));
        }
    }
    assert!(found.is_empty(), "spawn on a TaskTracker the app owns (and waits for) instead: {found:#?}");
}

#[test]
fn time_is_read_only_through_the_clock() {
    // herald-receiver depends on no other Herald crate (it is for users' own receivers).
    let exempt = ["herald-core/src/clock.rs", "herald-receiver/"];
    let mut found = Vec::new();
    for (path, text) in sources() {
        if exempt.iter().any(|e| path.starts_with(e)) {
            continue;
        }
        let code = non_test_part(&path, &text);
        for needle in ["Utc::now()", "SystemTime::now()", "Local::now()"] {
            found.extend(occurrences(&path, code, needle));
        }
    }
    assert!(
        found.is_empty(),
        "read time through herald_core::clock (a Clock, or clock::system_now): {found:#?}"
    );
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> =
        sources().into_iter().filter(|(_, text)| !text.starts_with("//!")).map(|(path, _)| path).collect();
    assert!(missing.is_empty(), "start these modules with a `//!` line: {missing:#?}");
}

#[test]
fn source_files_stay_small() {
    const MAX_LINES: usize = 600;
    let long: Vec<String> = sources()
        .into_iter()
        .filter_map(|(path, text)| {
            let lines = non_test_part(&path, &text).lines().count();
            (lines > MAX_LINES).then(|| format!("{path}: {lines} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concept (at most {MAX_LINES} lines before their tests): {long:#?}"
    );
}

#[test]
fn the_code_map_names_every_module() {
    let architecture =
        std::fs::read_to_string(crates_dir().parent().unwrap().join("ARCHITECTURE.md")).unwrap();
    let start = architecture.find("## Code map").expect("ARCHITECTURE.md has a code map");
    let map = &architecture[start..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |end| end + 3)];
    let words: std::collections::HashSet<&str> =
        map.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).collect();
    let mut missing = Vec::new();
    for (path, _) in sources() {
        let file = path.rsplit('/').next().unwrap();
        let name = match file {
            "lib.rs" | "main.rs" => continue,
            "mod.rs" => path.rsplit('/').nth(1).unwrap(),
            other => other.trim_end_matches(".rs"),
        };
        if !words.contains(name) {
            missing.push(path);
        }
    }
    assert!(missing.is_empty(), "name these modules in ARCHITECTURE.md's code map: {missing:#?}");
}
