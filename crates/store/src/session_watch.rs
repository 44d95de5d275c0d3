//! How session changes reach the other instances' session caches
//! (`twostep_domain::sessions::cache`).
//!
//! **PostgreSQL**: the change is announced with `pg_notify` on
//! `SESSION_CHANNEL` right after it commits, and every server holds a
//! `LISTEN` connection (`follow_session_changes`) that evicts what it hears.
//! While that connection is down or not yet (re)connected, `ListenerWatch`
//! tells the cache to stand aside (every request reads the database); a new
//! connection starts the cache over, since announcements made meanwhile
//! are lost. Notifications are database-wide, not per schema: servers on
//! other schemas of the same database only evict more than they must.
//!
//! **SQLite** has one server, but the command line (`twostep user disable`,
//! `reset-2fa`…) changes the same file from another process: every
//! announcement appends a byte to a marker file beside the database
//! (`<database>-sessions`), and the cache checks the marker's size, time and
//! inode (one `stat`) before answering from memory. Any change starts the
//! cache over, the server's own changes included: they are rare next to
//! reads. A marker that cannot be read turns the cache off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use twostep_domain::sessions::cache::{Freshness, SessionChange};

/// The `LISTEN`/`NOTIFY` channel of session changes.
pub const SESSION_CHANNEL: &str = "twostep_sessions";

/// Past this size the marker starts over (a change of size all the same).
const MARKER_MAX: u64 = 4096;

/// The marker file beside a SQLite database named by `url` (as normalised by
/// `connect`); `None` for a path SQLite would decode itself.
pub(crate) fn marker_path(url: &str) -> Option<PathBuf> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains('%') {
        return None;
    }
    Some(PathBuf::from(format!("{path}-sessions")))
}

/// Appends to the marker (created owner-only), so every process watching it
/// sees a new stamp.
pub(crate) fn bump_marker(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    if f.metadata()?.len() >= MARKER_MAX {
        f.set_len(0)?;
    }
    f.write_all(b".")
}

/// The SQLite marker as a freshness source.
pub struct MarkerWatch {
    path: PathBuf,
}

impl Freshness for MarkerWatch {
    fn stamp(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(m) => {
                let mut stamp = m.len();
                for part in [m.ino(), m.mtime().cast_unsigned(), m.mtime_nsec().cast_unsigned()] {
                    stamp = stamp.rotate_left(17) ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                }
                // 0 is kept for "never bumped" below.
                Some(stamp.max(1))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
            Err(_) => None,
        }
    }
}

/// The PostgreSQL listener's state as a freshness source: `None` while it is
/// down, otherwise the number of the connection it listens on.
#[derive(Debug, Default)]
pub struct ListenerWatch {
    connection: AtomicU64,
}

impl ListenerWatch {
    fn down(&self) {
        self.connection.store(0, Ordering::SeqCst);
    }

    fn up(&self, n: u64) {
        self.connection.store(n, Ordering::SeqCst);
    }

    /// Whether a `LISTEN` connection is up.
    pub fn is_listening(&self) -> bool {
        self.connection.load(Ordering::SeqCst) != 0
    }
}

impl Freshness for ListenerWatch {
    fn stamp(&self) -> Option<u64> {
        Some(self.connection.load(Ordering::SeqCst)).filter(|n| *n != 0)
    }
}

impl crate::SqlStore {
    /// How this process hears session changes made by others, for
    /// `SessionCache::watch`: the marker on SQLite; on PostgreSQL a
    /// `ListenerWatch` that `follow_session_changes` must keep up.
    pub fn session_freshness(&self) -> Option<Arc<dyn Freshness>> {
        match self.backend {
            crate::Backend::Sqlite => self.marker.clone().map(|path| Arc::new(MarkerWatch { path }) as _),
            crate::Backend::Postgres => None,
        }
    }
}

/// Listens for session changes on PostgreSQL until the task is dropped,
/// reconnecting after a second when the connection is lost. `on_change`
/// gets each change heard, or `None` for a payload it cannot read (the
/// cache then forgets everything).
pub async fn follow_session_changes(
    url: String,
    watch: Arc<ListenerWatch>,
    on_change: impl Fn(Option<SessionChange>) + Send + Sync + 'static,
) {
    let mut connections = 0u64;
    loop {
        watch.down();
        match listen(&url).await {
            Ok(mut listener) => {
                connections += 1;
                watch.up(connections);
                tracing::debug!("listening for session changes");
                // `Ok(None)`: the connection was lost (and not re-established,
                // `eager_reconnect` being off), so a new one starts the
                // cache over below.
                while let Ok(Some(n)) = listener.try_recv().await {
                    on_change(SessionChange::from_payload(n.payload()));
                }
                watch.down();
                tracing::warn!(
                    "lost the session-change listener; sessions are read from the database until it is back"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for session changes; sessions are read from the database");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.eager_reconnect(false);
    listener.listen(SESSION_CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_stamp_changes_with_every_bump_and_survives_its_wrap() {
        let dir = std::env::temp_dir().join(format!("twostep-marker-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("twostep.db");
        let path = marker_path(&format!("sqlite://{}?mode=rwc", db.display())).expect("path");
        assert_eq!(path, dir.join("twostep.db-sessions"));
        let watch = MarkerWatch { path: path.clone() };
        let mut seen = vec![watch.stamp().expect("absent is a stamp")];
        for _ in 0..MARKER_MAX + 2 {
            bump_marker(&path).expect("bump");
            let s = watch.stamp().expect("stamp");
            assert_ne!(Some(&s), seen.last(), "after {} bumps", seen.len());
            seen.push(s);
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600, "owner only");
        assert!(marker_path("sqlite://data/a%20b.db").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
