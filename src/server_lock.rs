//! Who is using a SQLite database: a running server holds a shared lock on
//! a file beside it (`twostep.db.lock`) for as long as it runs, and
//! `twostep restore` takes that lock exclusively, so a restore never swaps
//! the file under a live server (whose open connections would keep writing
//! to the replaced file and lose it).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held until dropped (the process ends: the kernel releases it even after
/// a crash, so a stale lock cannot block a restore).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

fn open(db: &Path) -> Result<File, String> {
    let path = lock_path(db);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Taken by `serve`: any number of servers may share a database.
pub fn serving(db: &Path) -> Result<ServerLock, String> {
    let file = open(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(ServerLock { _file: file }),
        Err(TryLockError::WouldBlock) => {
            Err(format!("{} is being restored; start the server after that", db.display()))
        }
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", lock_path(db).display())),
    }
}

/// Taken by `restore`: refused while any server runs on the database.
pub fn exclusive(db: &Path) -> Result<ServerLock, String> {
    let file = open(db)?;
    match file.try_lock() {
        Ok(()) => Ok(ServerLock { _file: file }),
        Err(TryLockError::WouldBlock) => {
            Err(format!("a twostep server is running on {}; stop it before restoring", db.display()))
        }
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", lock_path(db).display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_share_the_database_and_a_restore_waits_for_all_of_them() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("twostep.db");
        let a = serving(&db).expect("first server");
        let b = serving(&db).expect("second server");
        let refused = exclusive(&db).expect_err("servers running");
        assert!(refused.contains("stop it before restoring"), "{refused}");
        drop((a, b));
        let restoring = exclusive(&db).expect("no server");
        assert!(serving(&db).expect_err("restore running").contains("being restored"));
        drop(restoring);
        assert!(dir.path().join("twostep.db.lock").exists());
    }
}
