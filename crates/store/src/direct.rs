//! SQLite on the calling thread, for the hot paths.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and sends
//! it every statement: a sign-in's dozen statements are a dozen round trips
//! between threads, and the profile of the verify path found half the
//! server's CPU in those switches and 1% in SQLite (docs/performance.md).
//! Here the store keeps SQLite connections of its own and runs a statement
//! where it is asked for: a point lookup or a conditional update takes
//! microseconds, less than one hop would. Statements are prepared once per
//! connection and cached.
//!
//! One writer connection, behind an async mutex that is also the process's
//! write gate: a sqlx transaction on SQLite takes the gate for its life
//! (`SqlStore::begin`), so a direct write never waits in SQLite's busy
//! handler for a transaction whose task cannot run while this thread
//! blocks, and direct writers queue on the mutex instead of sleeping in the
//! busy handler. Readers have connections of their own (WAL: they never
//! wait for the writer). Slow work (listings, bulk loads, migrations) stays
//! on sqlx, off the request threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags};
use twostep_domain::error::StoreError;

use crate::sql::{Cols, Stmt, direct_err};
use crate::{ConnectError, Synchronous};

/// Statements cached per connection: the hot paths use a few dozen shapes.
const CACHED_STATEMENTS: usize = 128;

pub(crate) struct Direct {
    writer: tokio::sync::Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("readers", &self.readers.len()).finish_non_exhaustive()
    }
}

impl Direct {
    /// Opens one writer and `readers` readers on the database of `url`
    /// (a `sqlite://` URL as `sqlite_url` leaves it), with the pool's
    /// settings.
    pub fn open(url: &str, synchronous: Synchronous, readers: usize) -> Result<Self, ConnectError> {
        let rest = url.trim_start_matches("sqlite://");
        // SQLite's URI form takes the same path and query (`mode=rwc`, …).
        let uri = format!("file:{rest}");
        let open = |extra: &str| -> Result<Connection, ConnectError> {
            // The pool has made the file; CREATE only lets the URI's
            // `mode=rwc` stand (SQLite refuses a mode wider than the flags).
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&uri, flags).map_err(|e| ConnectError::Open(e.to_string()))?;
            conn.execute_batch(&format!(
                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; {}; {extra}",
                synchronous.pragma()
            ))
            .map_err(|e| ConnectError::Open(e.to_string()))?;
            conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
            Ok(conn)
        };
        let writer = open("PRAGMA journal_mode = WAL")?;
        let readers = (0..readers.max(1)).map(|_| open("").map(Mutex::new)).collect::<Result<_, _>>()?;
        Ok(Self { writer: tokio::sync::Mutex::new(writer), readers, next: AtomicUsize::new(0) })
    }

    /// The write gate (and the writer connection). Held briefly: by one
    /// direct write, or by a sqlx transaction from BEGIN to COMMIT.
    pub async fn gate(&self) -> tokio::sync::MutexGuard<'_, Connection> {
        self.writer.lock().await
    }

    /// A free reader, or the next one in turn when all are busy.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(c) = self.readers[(start + i) % n].try_lock() {
                return c;
            }
        }
        self.readers[start % n].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads rows, decoding each with `f`.
    pub fn read<T>(&self, s: &Stmt<'_>, f: impl Fn(&dyn Cols) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        rows(&self.reader(), s, f)
    }
}

/// Runs `s` on `conn` and decodes every row it returns.
pub(crate) fn rows<T>(
    conn: &Connection,
    s: &Stmt<'_>,
    f: impl Fn(&dyn Cols) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare_cached(&s.sql).map_err(direct_err)?;
    s.bind_to(&mut st).map_err(direct_err)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(direct_err)? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// Runs `s` on `conn` for its effect: the number of rows it changed.
pub(crate) fn run(conn: &Connection, s: &Stmt<'_>) -> Result<u64, StoreError> {
    let mut st = conn.prepare_cached(&s.sql).map_err(direct_err)?;
    s.bind_to(&mut st).map_err(direct_err)?;
    let n = st.raw_execute().map_err(direct_err)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}
