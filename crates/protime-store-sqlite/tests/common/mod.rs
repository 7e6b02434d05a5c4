//! A directory under the system temp dir, removed on drop (also when a test fails): shared by
//! the store's unit tests (through `#[path]`) and its integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named after `name`, the process and a counter.
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "protime-store-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The database file `name` in it.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.sqlite3"))
    }

    /// The default database file in it.
    pub(crate) fn db(&self) -> PathBuf {
        self.file("store")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
