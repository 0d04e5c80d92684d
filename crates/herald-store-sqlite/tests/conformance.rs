//! Runs the shared Store conformance suite against SQLite, one fresh database file per check.

use herald_core::secret::Cipher;
use herald_store_sqlite::SqliteStore;

async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).expect("valid key");
    let store = SqliteStore::open(&dir.path().join("herald.db"), cipher).await.expect("opens");
    (store, dir)
}

herald_core::store_conformance_tests!(fresh_store().await);
