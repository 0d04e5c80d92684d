//! What Herald writes to disk is private to its user: the data directory, the database with
//! its WAL and shared-memory files, the encryption key and the lock file.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::json;

use crate::helpers::{Backend, Options, TestServer};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_directory_and_the_database_files_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("herald-data");
    let options = Options { backend: Some(Backend::Sqlite), ..Options::default() };
    let server = TestServer::start_in(&data_dir, options).await;
    // A write, so the WAL holds something while the server runs.
    server.create_app("Acme", None).await;
    assert_eq!(server.post("/api/v1/app", json!({"name": "Beta"})).await.status, 201);

    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    for file in ["herald.db", "herald.db-wal", "herald.db-shm", "encryption.key", "herald.lock"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    server.stop().await;
}
