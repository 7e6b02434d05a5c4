//! Whether the store's file is still the one the store writes to. SQLite keeps writing
//! through its open file descriptor when the file is deleted or replaced (a restore, a
//! `mv`, an over-eager cleanup job): every commit then lands in a file nobody will open
//! again, and after a restart every delivery acknowledged meanwhile is gone. So the writer
//! checks the path before and after each commit, and a delivery whose commit did not land
//! in the file at the path is not acknowledged.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// The file at the store's path when it was opened.
#[derive(Debug)]
pub(crate) struct FileWatch {
    path: PathBuf,
    identity: Identity,
}

/// What tells one file from another at the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_metadata: &std::fs::Metadata) -> Self {
        // Without inode numbers only a deleted file is noticed.
        Self {
            device: 0,
            inode: 0,
        }
    }
}

impl FileWatch {
    /// Remembers the file now at `path`.
    pub(crate) fn new(path: &Path) -> Result<Self, StoreError> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            identity: Identity::of(&metadata),
        })
    }

    /// `Ok` while the path still names the same file and that file can be written.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let gone = |what: &str| StoreError::FileGone {
            path: self.path.clone(),
            what: what.to_owned(),
        };
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(gone("it was deleted"));
            }
            Err(error) => return Err(gone(&format!("it cannot be examined: {error}"))),
        };
        if Identity::of(&metadata) != self.identity {
            return Err(gone("it was replaced by another file"));
        }
        writable(&self.path).map_err(|error| gone(&format!("it can no longer be written: {error}")))
    }
}

/// Whether this process may write the file (permissions, a read-only mount), asked with
/// `access(2)` — never by opening it: closing any descriptor of the database file would
/// release every POSIX lock SQLite holds on it in this process, after which another
/// process closing its connection takes itself for the last one and deletes the WAL that
/// this process is still writing to.
#[cfg(unix)]
fn writable(path: &Path) -> Result<(), std::io::Error> {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn writable(path: &Path) -> Result<(), std::io::Error> {
    let metadata = std::fs::metadata(path)?;
    if metadata.permissions().readonly() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the file is read-only",
        ));
    }
    Ok(())
}
