//! twostep's storage: one SQL implementation of the domain's store ports,
//! run on SQLite (the embedded default) or PostgreSQL, chosen by the URL.
//!
//! Queries go through sqlx's `Any` driver with portable SQL (`$n`
//! parameters, `RETURNING`, integers for time), so each operation is
//! written once and the conformance tests prove it on both engines. Only
//! the DDL differs, in two migration trees changed together.

mod accounts;
mod admin;
mod allowlist;
mod audit;
pub mod backup;
mod bulk;
mod codes;
mod credentials;
mod direct;
mod exec;
mod factors;
mod locks;
mod migrate;
mod oidc;
mod orgs;
mod outbox;
mod push;
mod rotation;
pub mod session_watch;
mod sessions;
mod sql;
mod stats;
mod throttle;
mod webauthn;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};
use twostep_domain::error::StoreError;

pub use migrate::{MigrationReport, latest_version};
pub use stats::OutboxBacklog;

/// Which engine a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// SQLite's `synchronous` setting in WAL mode (`sqlite_synchronous`).
///
/// `Normal` (the default) fsyncs the WAL at checkpoints: a process crash
/// loses nothing committed, a power loss or kernel crash may lose the last
/// commits. `Full` fsyncs at every commit: durable, at several times fewer
/// commits per second (docs/performance.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Normal,
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "PRAGMA synchronous = NORMAL",
            Self::Full => "PRAGMA synchronous = FULL",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Full => "full",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the file beside the database that announces session changes
    /// to the other processes on it (`session_watch`); `None` when its path
    /// cannot be told from the URL (then no session is kept in memory).
    marker: Option<std::path::PathBuf>,
    /// SQLite: the connections the hot paths use on the calling thread
    /// (`direct`); `None` on PostgreSQL.
    direct: Option<std::sync::Arc<direct::Direct>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database_url must start with sqlite:// or postgres://")]
    UnknownScheme,
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("migration failed: {0}")]
    Migrate(String),
}

impl SqlStore {
    /// Opens the database (creating a SQLite file and its directory when
    /// missing) with the shipped `synchronous = NORMAL`. Does not migrate;
    /// see `migrate`.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, Synchronous::default()).await
    }

    /// `connect`, choosing SQLite's durability (ignored on PostgreSQL).
    pub async fn connect_with(url: &str, synchronous: Synchronous) -> Result<Self, ConnectError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(ConnectError::UnknownScheme)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let created = match backend {
            Backend::Sqlite => create_private_sqlite_file(&url)?,
            Backend::Postgres => None,
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| ConnectError::Open(e.to_string()))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let max = match backend {
            // One writer at a time is SQLite's model; a few readers help.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let pool = Self::open_pool(backend, max, options, synchronous).await?;
        if let Some(db) = created {
            private_sidecars(&db)?;
        }
        let marker = match backend {
            Backend::Sqlite => session_watch::marker_path(&url),
            Backend::Postgres => None,
        };
        let direct = match backend {
            // A reader for each thread that may ask at once.
            Backend::Sqlite => {
                let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
                Some(std::sync::Arc::new(direct::Direct::open(&url, synchronous, threads + 1)?))
            }
            Backend::Postgres => None,
        };
        Ok(Self { pool, backend, marker, direct })
    }

    async fn open_pool(
        backend: Backend,
        max: u32,
        options: AnyConnectOptions,
        synchronous: Synchronous,
    ) -> Result<AnyPool, ConnectError> {
        AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            // The ping before every acquire is a second round trip to the
            // connection's worker thread for each statement; a SQLite file
            // never hangs up. A PostgreSQL server may, so its idle
            // connections are still checked before use.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; the busy
                        // timeout makes writers queue instead of failing.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                        sqlx::query(synchronous.pragma()).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| ConnectError::Open(e.to_string()))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so a first start creates the file, and creates the
/// directory it lives in.
fn sqlite_url(url: &str) -> Result<String, ConnectError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(ConnectError::Open("an in-memory SQLite database would lose everything at exit".into()));
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir).map_err(|e| ConnectError::Open(format!("{}: {e}", dir.display())))?;
    }
    let sep = if rest.contains('?') { '&' } else { '?' };
    Ok(if rest.contains("mode=") { format!("sqlite://{rest}") } else { format!("sqlite://{rest}{sep}mode=rwc") })
}

/// Creates missing directories readable by their owner only: they hold the
/// database, whose rows include secrets sealed with the master key that
/// usually sits beside it. Existing directories keep their mode.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the database file with mode 0600 before SQLite does, since
/// SQLite would create it 0644 under the usual umask, and returns its path
/// (`None` when it already existed or the URL opens it read-only). An
/// existing file keeps the mode its operator gave it.
fn create_private_sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, ConnectError> {
    use std::os::unix::fs::OpenOptionsExt;
    let rest = url.trim_start_matches("sqlite://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // A percent-encoded path is left to SQLite, which decodes it: creating
    // the undecoded name here would leave a stray file.
    if !query.split('&').any(|p| p == "mode=rwc") || path.contains('%') {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(path);
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(ConnectError::Open(format!("{}: {e}", path.display()))),
    }
}

/// SQLite gives its `-wal` and `-shm` files the database file's mode; set
/// here as well so a freshly created database never has a readable
/// sidecar, whatever the SQLite build does.
fn private_sidecars(db: &Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ConnectError::Open(format!("{}: {e}", path.display())));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Maps sqlx errors to the domain's, recognising unique violations.
#[expect(clippy::needless_pass_by_value, reason = "shaped for .map_err(store_err)")]
pub(crate) fn store_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict;
    }
    StoreError::Backend(e.to_string())
}

#[async_trait::async_trait]
impl twostep_domain::storage::Health for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(store_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn pragma(pool: &AnyPool) -> i64 {
        sqlx::query("PRAGMA synchronous").fetch_one(pool).await.expect("pragma").try_get::<i64, _>(0).expect("int")
    }

    #[tokio::test]
    async fn sqlite_synchronous_applies_to_every_connection() {
        let dir = std::env::temp_dir().join(format!("twostep-sync-{}", uuid::Uuid::new_v4()));
        for (sync, expected) in [(Synchronous::Normal, 1), (Synchronous::Full, 2)] {
            let url = format!("sqlite://{}/{}.db", dir.display(), sync.as_str());
            let store = SqlStore::connect_with(&url, sync).await.expect("open");
            assert_eq!(pragma(&store.pool).await, expected);
            // The hot paths' own connections too (`direct`).
            let direct = store.direct.as_ref().expect("SQLite opens direct connections");
            let read = direct.read(&sql::Stmt::new("PRAGMA synchronous"), |r| r.int("synchronous")).expect("pragma");
            assert_eq!(read, vec![expected]);
            store.close().await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
