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
//!
//! Group commit: a write joins the batch open on the writer (opening one
//! if none is), lets the other ready tasks join it, then commits it unless
//! another member already has. A commit's cost (WAL frames, file locks) is
//! shared by the batch; every write is answered only after its batch
//! commits, and if the commit fails, every member gets the error.
//!
//! Checkpoints run on a thread of their own, never on the writer: SQLite's
//! automatic checkpoint runs in the connection that commits, so the writer
//! (and with it every request waiting at the gate) stood still while it
//! copied pages to the database file and synced it twice — dozens of times
//! a second under a sign-in load, a third of the writer's time
//! (docs/performance.md). A passive checkpoint from another connection
//! runs beside the writer's commits; once the WAL has grown large it takes
//! the gate for a moment to copy the last frames, so that the WAL can
//! start over (under steady writes a checkpoint beside them never catches
//! up, and the WAL would grow without end).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use twostep_domain::error::StoreError;

use crate::sql::{Cols, Stmt, direct_err};
use crate::{ConnectError, Synchronous};

/// Statements cached per connection: the hot paths use a few dozen shapes.
const CACHED_STATEMENTS: usize = 128;

/// How long the checkpointer lets commits gather after the first one it
/// hears of: each checkpoint writes a page dirtied many times once.
const CHECKPOINT_AFTER: Duration = Duration::from_millis(50);

/// WAL frames (4 KB pages) past which the checkpointer copies the rest with
/// the writer held, so the WAL starts over: about 16 MB.
const RESTART_AFTER_FRAMES: i64 = 4096;

/// How long a write waits for another connection's write lock before it
/// fails, as the other connections' busy timeout.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The longest pause between two tries for that lock.
const LOCK_RETRY_MAX: Duration = Duration::from_millis(10);

/// Batch outcomes kept for members still to look theirs up: a member looks
/// within microseconds of the commit.
const OUTCOMES_KEPT: usize = 1024;

/// The writer connection and its batches.
pub(crate) struct Writer {
    pub conn: Connection,
    /// The number of the batch open on `conn`, if one is.
    open: Option<u64>,
    next: u64,
    /// How the latest batches ended (number, committed).
    outcomes: VecDeque<(u64, bool)>,
    /// Tells the checkpointer there is something to copy.
    committed: SyncSender<()>,
}

impl Writer {
    /// The open batch's number, opening one if none is; `None` while
    /// another connection (another process, another store on the file)
    /// holds the write lock. See `join`.
    fn try_join(&mut self) -> Result<Option<u64>, StoreError> {
        if let Some(b) = self.open {
            return Ok(Some(b));
        }
        match self.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {}
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
                return Ok(None);
            }
            Err(e) => return Err(direct_err(e)),
        }
        self.next += 1;
        self.open = Some(self.next);
        Ok(Some(self.next))
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Rolls back the open batch that holds nobody's writes (no member waits
    /// for its outcome).
    pub fn end_empty(&mut self) {
        if self.open.take().is_some() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Commits the open batch, if any, and records how it ended.
    pub fn commit_open(&mut self) {
        let Some(batch) = self.open.take() else { return };
        let committed = self.conn.execute_batch("COMMIT").is_ok();
        if committed {
            // Full: it has been told already and has not yet woken.
            let _ = self.committed.try_send(());
        } else if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.record(batch, committed);
    }

    /// After a statement failed: an error that ended the whole transaction
    /// (a full disk, an I/O error) lost every member's writes.
    pub fn checked<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err()
            && self.conn.is_autocommit()
            && let Some(batch) = self.open.take()
        {
            self.record(batch, false);
        }
        r
    }

    /// How many batches have been opened.
    #[cfg(test)]
    pub fn batches(&self) -> u64 {
        self.next
    }

    fn record(&mut self, batch: u64, committed: bool) {
        if self.outcomes.len() == OUTCOMES_KEPT {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((batch, committed));
    }

    fn outcome(&self, batch: u64) -> Result<(), StoreError> {
        match self.outcomes.iter().rev().find(|(b, _)| *b == batch) {
            Some((_, true)) => Ok(()),
            _ => Err(StoreError::Backend("the write's transaction did not commit".into())),
        }
    }
}

pub(crate) struct Direct {
    writer: Arc<tokio::sync::Mutex<Writer>>,
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
        // Statement journals (a savepoint's, a multi-row statement's) in
        // memory, not in temporary files made and unlinked per batch; a WAL
        // that grew past 32 MB under a burst is cut back when it starts over.
        // No busy handler on the writer: `join` waits for the lock as a task.
        let writer = open(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;
             PRAGMA journal_size_limit = 33554432; PRAGMA busy_timeout = 0",
        )?;
        let readers = (0..readers.max(1)).map(|_| open("").map(Mutex::new)).collect::<Result<_, _>>()?;
        let (committed, heard) = sync_channel(1);
        let writer = Writer { conn: writer, open: None, next: 0, outcomes: VecDeque::new(), committed };
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        // Weak: the thread ends when the store lets its writer go.
        let gate = Arc::downgrade(&writer);
        let checkpointer = open("")?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &heard, &gate))
            .map_err(|e| ConnectError::Open(format!("checkpoint thread: {e}")))?;
        Ok(Self { writer, readers, next: AtomicUsize::new(0) })
    }

    /// The write gate (and the writer). Held briefly: by one direct write,
    /// or by a sqlx transaction from BEGIN to COMMIT.
    pub async fn gate(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        self.writer.lock().await
    }

    /// Waits until `batch` has committed, committing it if no other member
    /// has yet; its outcome. Dropped before that (the request went away),
    /// it leaves the commit to a task, so no batch stays open.
    pub async fn settle(self: &Arc<Self>, batch: u64) -> Result<(), StoreError> {
        let mut pending = Pending { direct: Arc::clone(self), batch: Some(batch) };
        // The other ready tasks' writes join the batch meanwhile.
        tokio::task::yield_now().await;
        let mut w = self.writer.lock().await;
        if w.open == Some(batch) {
            w.commit_open();
        }
        pending.batch = None;
        w.outcome(batch)
    }

    /// One write in the open batch: `f` runs on the writer, and the answer
    /// waits for the batch to commit. A failed statement still waits: its
    /// batch may hold others' writes, which someone must commit.
    pub async fn write_one<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let (r, batch) = {
            let mut w = self.writer.lock().await;
            let batch = join(&mut w).await?;
            let r = f(&w.conn);
            (w.checked(r), batch)
        };
        let settled = self.settle(batch).await;
        let r = r?;
        settled.map(|()| r)
    }

    /// Commits `batch` from a task of its own, if it is still open.
    pub fn settle_later(self: &Arc<Self>, batch: u64) {
        let direct = Arc::clone(self);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut w = direct.writer.lock().await;
                if w.open == Some(batch) {
                    w.commit_open();
                }
            });
        }
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

/// The writer's open batch, opening one if none is. While another
/// connection holds SQLite's write lock, it waits as a task (the gate
/// held, so this instance's writers queue behind it as before), never in
/// SQLite's busy handler: that handler blocks the runtime thread it runs
/// on, and the task that would release the lock may be queued on that
/// very thread (a second instance on the file in this process, as the
/// API tests run two), or every request of this instance waits behind it.
/// Only a connection outside this store can hold the lock: this store's
/// own sqlx transactions hold the gate.
pub(crate) async fn join(w: &mut tokio::sync::MutexGuard<'_, Writer>) -> Result<u64, StoreError> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(batch) = w.try_join()? {
            return Ok(batch);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Backend("database is locked (another connection holds the write lock)".into()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LOCK_RETRY_MAX);
    }
}

/// Copies committed pages from the WAL into the database file, a while
/// after each commit it hears of, until the writer is gone. Passive: it
/// waits for nobody and copies what no reader still needs. When the WAL
/// has grown past `RESTART_AFTER_FRAMES`, it copies the rest with the gate
/// held and the open batch committed, so the writer's next batch finds it
/// all copied and starts the WAL over. Asleep while nothing commits.
fn checkpoint_loop(conn: &Connection, heard: &Receiver<()>, gate: &Weak<tokio::sync::Mutex<Writer>>) {
    // A second handle on the database file, to sync it outside the gate.
    let file = conn.path().filter(|p| !p.is_empty()).and_then(|p| std::fs::File::open(p).ok());
    while heard.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_AFTER);
        while heard.try_recv().is_ok() {}
        let frames = match checkpoint(conn) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; the next commit tries again");
                continue;
            }
        };
        if frames < RESTART_AFTER_FRAMES {
            continue;
        }
        if let Some(file) = &file {
            flush_copied(conn, file);
        }
        let Some(writer) = gate.upgrade() else { return };
        let mut w = writer.blocking_lock();
        w.commit_open();
        if let Err(e) = checkpoint(conn) {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next commit tries again");
        }
    }
}

/// Syncs the pages the passes so far copied into the database file, then
/// copies (and syncs) what was committed meanwhile. SQLite syncs the file
/// only in a pass that copies the whole WAL, the one under the gate, and
/// that sync wrote every page copied since the last: at 1,000,000 accounts
/// some 5,000 pages scattered over 3 GB, 13 ms with every write waiting at
/// the gate (p99 of a sign-in ×1.6 of the 10,000-account figure). After
/// this the gated pass has a few hundred pages left: 2–3 ms
/// (docs/performance.md). An extra sync never loses anything; one that
/// fails leaves the gated pass more to do.
fn flush_copied(conn: &Connection, file: &std::fs::File) {
    let flush = || -> Result<(), Box<dyn std::error::Error>> {
        file.sync_data()?;
        checkpoint(conn)?;
        Ok(file.sync_data()?)
    };
    if let Err(e) = flush() {
        tracing::warn!(error = %e, "WAL checkpoint before a restart failed; the gated pass does the rest");
    }
}

/// A passive checkpoint: the WAL's size in frames.
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// A batch whose member has not seen it commit.
struct Pending {
    direct: Arc<Direct>,
    batch: Option<u64>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(batch) = self.batch {
            self.direct.settle_later(batch);
        }
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
