//! Online backup and restore of a SQLite database.
//!
//! A backup is `VACUUM INTO` a fresh file beside the destination: SQLite
//! copies one read transaction's snapshot, so the server keeps serving and
//! writing (WAL) while it runs. The copy is switched to a rollback journal,
//! so it is one self-contained file, checked with `integrity_check`,
//! fsynced, and only then renamed into place: a crash leaves either the old
//! file or the new one, never half of one.
//!
//! PostgreSQL has `pg_dump` and `pg_restore` for this (README).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup and restore here are for SQLite; for PostgreSQL use pg_dump and pg_restore (README)")]
    NotSqlite,
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Sqlite(PathBuf, String),
    #[error("{0} failed its integrity check: {1}")]
    Integrity(PathBuf, String),
    #[error("{0} already exists (pass --force to replace it)")]
    Exists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{0} has schema version {1}, newer than this twostep's {2}: restore it with a newer twostep")]
    TooNew(PathBuf, i64, i64),
}

/// What a checked copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    pub bytes: u64,
    pub schema_version: i64,
}

/// The file a `sqlite://` URL names, without its query; `None` for other URLs.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io(path.to_owned(), e)
}

fn sql(path: &Path) -> impl FnOnce(sqlx::Error) -> BackupError + '_ {
    move |e| BackupError::Sqlite(path.to_owned(), e.to_string())
}

async fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.exists() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .log_statements(tracing::log::LevelFilter::Trace)
        .connect()
        .await
        .map_err(sql(path))
}

/// A temporary name beside `dest`, so the final rename stays on one file
/// system and is atomic.
fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// An empty file readable by its owner only: a backup holds password
/// hashes and sealed secrets.
fn create_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop).map_err(io(path))
}

/// Turns `tmp` into a self-contained rollback-journal file, checks it,
/// fsyncs it and its directory after renaming it to `dest`.
async fn seal(tmp: &Path, dest: &Path) -> Result<CopyReport, BackupError> {
    let report = check(tmp, true).await?;
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(io(tmp))?;
    std::fs::rename(tmp, dest).map_err(io(dest))?;
    sync_dir(dest)?;
    Ok(report)
}

fn sync_dir(file: &Path) -> Result<(), BackupError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Runs `integrity_check` and reads the schema version. With `detach`, the
/// file is first switched out of WAL mode so it needs no `-wal` beside it.
pub async fn check(path: &Path, detach: bool) -> Result<CopyReport, BackupError> {
    let mut conn = open(path).await?;
    let result = async {
        if detach {
            sqlx::query("PRAGMA journal_mode = DELETE").execute(&mut conn).await.map_err(sql(path))?;
        }
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&mut conn).await.map_err(sql(path))?;
        let lines: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        if lines != ["ok"] {
            return Err(BackupError::Integrity(path.to_owned(), lines.join("; ")));
        }
        let version: Option<i64> = sqlx::query("SELECT MAX(version) FROM twostep_migrations")
            .fetch_one(&mut conn)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(sql(path))?;
        Ok(version.unwrap_or(0))
    }
    .await;
    conn.close().await.map_err(sql(path))?;
    let schema_version = result?;
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    Ok(CopyReport { bytes, schema_version })
}

/// Copies the live database at `db` to `out`, consistently, while other
/// connections read and write it. `out` must not exist unless `force`.
pub async fn backup_sqlite(db: &Path, out: &Path, force: bool) -> Result<CopyReport, BackupError> {
    if out.exists() && !force {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let tmp = temp_beside(out);
    let _ = std::fs::remove_file(&tmp);
    create_private(&tmp)?;
    let copied = async {
        let mut conn = open(db).await?;
        let target = tmp.to_str().ok_or_else(|| BackupError::Sqlite(tmp.clone(), "path is not UTF-8".into()))?;
        let vacuum = sqlx::query("VACUUM INTO $1").bind(target).execute(&mut conn).await.map_err(sql(db));
        conn.close().await.map_err(sql(db))?;
        vacuum?;
        seal(&tmp, out).await
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied
}

/// Puts the backup `from` in place of the database at `db`. The server
/// must be stopped: the old database's `-wal` and `-shm` are removed, since
/// SQLite would otherwise replay the old log onto the restored file.
pub async fn restore_sqlite(from: &Path, db: &Path, force: bool) -> Result<CopyReport, BackupError> {
    if !from.exists() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    if db.exists() && !force {
        return Err(BackupError::Exists(db.to_owned()));
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private_dir(dir).map_err(io(dir))?;
    }
    let tmp = temp_beside(db);
    let _ = std::fs::remove_file(&tmp);
    create_private(&tmp)?;
    let restored = async {
        // Checked as copied, so a source on read-only media works too.
        std::fs::copy(from, &tmp).map_err(io(&tmp))?;
        let report = check(&tmp, true).await?;
        let latest = crate::migrate::latest_version();
        if report.schema_version > latest {
            return Err(BackupError::TooNew(from.to_owned(), report.schema_version, latest));
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::remove_file(PathBuf::from(&name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(BackupError::Io(name.into(), e)),
                _ => {}
            }
        }
        seal(&tmp, db).await
    }
    .await;
    if restored.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqlStore;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("twostep-backup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///var/lib/t/t.db?mode=rwc"), Some(PathBuf::from("/var/lib/t/t.db")));
        assert_eq!(sqlite_path("sqlite://data/t.db"), Some(PathBuf::from("data/t.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[tokio::test]
    async fn a_backup_is_checked_private_and_restores_over_a_stale_wal() {
        let dir = scratch();
        let db = dir.join("live.db");
        let store = SqlStore::connect(&format!("sqlite://{}", db.display())).await.expect("open");
        store.migrate().await.expect("migrate");
        let out = dir.join("copy.db");
        let report = backup_sqlite(&db, &out, false).await.expect("backup");
        assert_eq!(report.schema_version, crate::migrate::latest_version());
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(backup_sqlite(&db, &out, false).await, Err(BackupError::Exists(_))));
        store.close().await;

        // A leftover -wal of the replaced database must not be replayed.
        let restored = dir.join("restored.db");
        std::fs::write(dir.join("restored.db-wal"), b"not a log").expect("wal");
        std::fs::write(&restored, b"old").expect("old");
        assert!(matches!(restore_sqlite(&out, &restored, false).await, Err(BackupError::Exists(_))));
        restore_sqlite(&out, &restored, true).await.expect("restore");
        assert!(!dir.join("restored.db-wal").exists());
        assert_eq!(check(&restored, false).await.expect("check").schema_version, report.schema_version);

        // Garbage is refused and leaves the target alone.
        let junk = dir.join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).expect("junk");
        assert!(restore_sqlite(&junk, &restored, true).await.is_err());
        assert!(check(&restored, false).await.is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
