//! Where a `Stmt` runs: on the calling thread through `direct` (SQLite), or
//! through sqlx's pool (PostgreSQL). Written once, the hot paths' SQL and
//! decoders serve both engines, as the rest of the store's do.

use sqlx::{Any, Transaction};
use twostep_domain::error::StoreError;

use crate::direct;
use crate::sql::{Cols, Stmt};
use crate::{SqlStore, store_err};

impl SqlStore {
    /// Rows of a read.
    pub(crate) async fn read_all<T: Send>(
        &self,
        s: &Stmt<'_>,
        f: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
    ) -> Result<Vec<T>, StoreError> {
        match &self.direct {
            Some(d) => d.read(s, f),
            None => s.sqlx().fetch_all(&self.pool).await.map_err(store_err)?.iter().map(|r| f(r)).collect(),
        }
    }

    /// The first row of a read, if any.
    pub(crate) async fn read_opt<T: Send>(
        &self,
        s: &Stmt<'_>,
        f: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.read_all(s, f).await?.into_iter().next())
    }

    /// A single-statement write (its own commit), and the rows it returns.
    pub(crate) async fn write_all<T: Send>(
        &self,
        s: &Stmt<'_>,
        f: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
    ) -> Result<Vec<T>, StoreError> {
        match &self.direct {
            Some(d) => d.write_one(|c| direct::rows(c, s, f)).await,
            None => s.sqlx().fetch_all(&self.pool).await.map_err(store_err)?.iter().map(|r| f(r)).collect(),
        }
    }

    /// A single-statement write: how many rows it changed.
    pub(crate) async fn write(&self, s: &Stmt<'_>) -> Result<u64, StoreError> {
        match &self.direct {
            Some(d) => d.write_one(|c| direct::run(c, s)).await,
            None => Ok(s.sqlx().execute(&self.pool).await.map_err(store_err)?.rows_affected()),
        }
    }

    /// A write transaction for `Stmt`s: on SQLite a savepoint in the
    /// writer's open batch, holding the gate until it ends.
    pub(crate) async fn write_tx(&self) -> Result<Tx<'_>, StoreError> {
        match &self.direct {
            Some(d) => {
                let mut w = d.gate().await;
                let opened = !w.is_open();
                let batch = direct::join(&mut w).await?;
                let r = w.conn.execute_batch("SAVEPOINT tx").map_err(crate::sql::direct_err);
                w.checked(r)?;
                Ok(Tx::Direct { writer: Some(w), direct: d, batch, opened })
            }
            None => Ok(Tx::Pool(Some(self.pool.begin().await.map_err(store_err)?))),
        }
    }

    /// A sqlx transaction. On SQLite it holds the write gate until it ends,
    /// so no direct write blocks a thread on a lock that only this
    /// transaction's task, waiting for a thread, could release.
    pub(crate) async fn begin(&self) -> Result<Gated<'_>, StoreError> {
        let gate = self.pool_gate().await;
        let tx = self.pool.begin().await.map_err(store_err)?;
        Ok(Gated { tx, _gate: gate })
    }

    /// On SQLite, the write gate for a write through sqlx's pool, held
    /// until dropped, with the writer's open batch committed first (it
    /// holds SQLite's write lock). Without it the pool's connection slept
    /// in SQLite's busy handler while the writer's batches came and went,
    /// and could lose the lock to them for the whole busy timeout. Held
    /// while no direct write of the same task is to come. `None` on
    /// PostgreSQL.
    pub(crate) async fn pool_gate(&self) -> Option<tokio::sync::MutexGuard<'_, direct::Writer>> {
        let mut w = self.direct.as_ref()?.gate().await;
        w.commit_open();
        Some(w)
    }
}

/// A sqlx transaction and, on SQLite, the write gate it holds.
pub(crate) struct Gated<'a> {
    tx: Transaction<'static, Any>,
    _gate: Option<tokio::sync::MutexGuard<'a, direct::Writer>>,
}

impl Gated<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for Gated<'_> {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Gated<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// A write transaction of `Stmt`s; dropped without `commit`, it rolls back.
pub(crate) enum Tx<'a> {
    Direct {
        /// The gate, held until the savepoint is released or rolled back.
        writer: Option<tokio::sync::MutexGuard<'a, direct::Writer>>,
        direct: &'a std::sync::Arc<direct::Direct>,
        batch: u64,
        /// It opened the batch: nobody else's writes are in it.
        opened: bool,
    },
    /// `None` once committed.
    Pool(Option<Transaction<'static, Any>>),
}

fn ended() -> StoreError {
    StoreError::Backend("the transaction has ended".into())
}

impl Tx<'_> {
    pub async fn all<T: Send>(
        &mut self,
        s: &Stmt<'_>,
        f: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Tx::Direct { writer, .. } => {
                let w = writer.as_mut().ok_or_else(ended)?;
                let rows = direct::rows(&w.conn, s, f);
                w.checked(rows)
            }
            Tx::Pool(tx) => {
                let tx = tx.as_mut().ok_or_else(ended)?;
                s.sqlx().fetch_all(&mut **tx).await.map_err(store_err)?.iter().map(|r| f(r)).collect()
            }
        }
    }

    pub async fn run(&mut self, s: &Stmt<'_>) -> Result<u64, StoreError> {
        match self {
            Tx::Direct { writer, .. } => {
                let w = writer.as_mut().ok_or_else(ended)?;
                let changed = direct::run(&w.conn, s);
                w.checked(changed)
            }
            Tx::Pool(tx) => {
                let tx = tx.as_mut().ok_or_else(ended)?;
                Ok(s.sqlx().execute(&mut **tx).await.map_err(store_err)?.rows_affected())
            }
        }
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        match &mut self {
            Tx::Direct { writer, direct, batch, .. } => {
                let mut w = writer.take().ok_or_else(ended)?;
                let r = w.conn.execute_batch("RELEASE tx").map_err(crate::sql::direct_err);
                w.checked(r)?;
                drop(w);
                direct.settle(*batch).await
            }
            Tx::Pool(tx) => tx.take().ok_or_else(ended)?.commit().await.map_err(store_err),
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if let Tx::Direct { writer: Some(w), opened, .. } = self {
            if *opened {
                // The batch holds only this: end it here, no commit to wait for.
                w.end_empty();
            } else if w.conn.execute_batch("ROLLBACK TO tx; RELEASE tx").is_err() {
                // Undo its own writes only; the members who wrote before it
                // (the gate was held since) will commit the rest.
                let _ = w.checked::<()>(Err(StoreError::Backend("rollback failed".into())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn store() -> (SqlStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("twostep-exec-{}", uuid::Uuid::new_v4()));
        let store = SqlStore::connect(&format!("sqlite://{}/t.db", dir.display())).await.expect("open");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)").execute(&store.pool).await.expect("table");
        (store, dir)
    }

    async fn keys(store: &SqlStore) -> Vec<String> {
        store.read_all(&Stmt::new("SELECT k FROM t ORDER BY k"), |r| r.text("k")).await.expect("read")
    }

    /// One thread, as in `#[tokio::test]`: a direct write that blocked the
    /// thread in SQLite's busy handler would keep the transaction holding
    /// the lock from ever committing. The gate makes it wait as a task.
    #[tokio::test(flavor = "current_thread")]
    async fn a_direct_write_waits_for_a_sqlx_transaction_without_blocking_its_thread() {
        let (store, dir) = store().await;
        let mut tx = store.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES ('a')").execute(&mut **tx).await.expect("insert in the transaction");
        let writer = {
            let store = store.clone();
            tokio::spawn(async move { store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg("b")).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!writer.is_finished(), "the direct write waits for the gate");
        tx.commit().await.expect("commit");
        let written = tokio::time::timeout(Duration::from_secs(5), writer).await.expect("in time").expect("task");
        assert_eq!(written.expect("written"), 1);
        assert_eq!(keys(&store).await, ["a", "b"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Every write through sqlx's pool outside a transaction takes the gate
    /// first (`pool_gate`): one that did not slept in SQLite's busy handler
    /// while the writer's batches held the lock. Read from the store's own
    /// source: a method whose SQL writes and which runs on `&self.pool`.
    #[test]
    fn every_write_on_the_pool_takes_the_gate() {
        // Every module of the store but this one: a new one belongs here.
        let sources = [
            ("accounts.rs", include_str!("accounts.rs")),
            ("admin.rs", include_str!("admin.rs")),
            ("allowlist.rs", include_str!("allowlist.rs")),
            ("audit.rs", include_str!("audit.rs")),
            ("backup.rs", include_str!("backup.rs")),
            ("bulk.rs", include_str!("bulk.rs")),
            ("codes.rs", include_str!("codes.rs")),
            ("credentials.rs", include_str!("credentials.rs")),
            ("direct.rs", include_str!("direct.rs")),
            ("factors.rs", include_str!("factors.rs")),
            ("lib.rs", include_str!("lib.rs")),
            ("locks.rs", include_str!("locks.rs")),
            ("migrate.rs", include_str!("migrate.rs")),
            ("oidc.rs", include_str!("oidc.rs")),
            ("orgs.rs", include_str!("orgs.rs")),
            ("outbox.rs", include_str!("outbox.rs")),
            ("push.rs", include_str!("push.rs")),
            ("rotation.rs", include_str!("rotation.rs")),
            ("session_watch.rs", include_str!("session_watch.rs")),
            ("sessions.rs", include_str!("sessions.rs")),
            ("sql.rs", include_str!("sql.rs")),
            ("stats.rs", include_str!("stats.rs")),
            ("throttle.rs", include_str!("throttle.rs")),
            ("webauthn.rs", include_str!("webauthn.rs")),
        ];
        let writes = |body: &str| {
            body.split('"').skip(1).step_by(2).any(|sql| {
                let sql = sql.trim_start();
                ["INSERT", "UPDATE", "DELETE"].iter().any(|w| sql.starts_with(w))
            })
        };
        let mut checked = 0;
        let mut ungated = Vec::new();
        for (file, src) in sources {
            // Trait methods and inherent ones, whatever their visibility.
            for method in src.split("async fn ").skip(1) {
                let body = method.split("\n    }\n").next().unwrap_or(method);
                if body.contains("&self.pool") && writes(body) {
                    checked += 1;
                    if !body.contains("self.pool_gate().await") {
                        ungated.push(format!("{file}: {}", body.split('(').next().unwrap_or(body)));
                    }
                }
            }
        }
        assert!(checked > 40, "the scan found only {checked} pool writes: has the code's shape changed?");
        assert!(ungated.is_empty(), "writes on the pool without the gate: {ungated:#?}");
    }

    /// One thread again, and the lock held by another connection on the
    /// file (another process, or a second instance in this one, as the API
    /// tests run two): a direct write that slept in SQLite's busy handler
    /// would hold the thread that the holder needs to commit on. It waits
    /// as a task instead, and writes once the other has committed.
    #[tokio::test(flavor = "current_thread")]
    async fn a_direct_write_waits_for_another_connections_lock_without_blocking_its_thread() {
        let (store, dir) = store().await;
        let other = rusqlite::Connection::open(dir.join("t.db")).expect("another connection");
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('other')").expect("the other holds the lock");
        let writer = {
            let store = store.clone();
            tokio::spawn(async move { store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg("mine")).await })
        };
        // Returns at once only if the write left the thread free.
        let slept = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(slept.elapsed() < Duration::from_secs(2), "the thread was held for {:?}", slept.elapsed());
        assert!(!writer.is_finished(), "the write waits for the lock");
        other.execute_batch("COMMIT").expect("the other commits");
        let written = tokio::time::timeout(Duration::from_secs(5), writer).await.expect("in time").expect("task");
        assert_eq!(written.expect("written"), 1);
        assert_eq!(keys(&store).await, ["mine", "other"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_direct_transaction_dropped_uncommitted_leaves_nothing_and_frees_the_writer() {
        let (store, dir) = store().await;
        {
            let mut tx = store.write_tx().await.expect("begin");
            tx.run(&Stmt::new("INSERT INTO t VALUES ($1)").arg("lost")).await.expect("insert");
        }
        let mut tx = store.write_tx().await.expect("the writer is free again");
        tx.run(&Stmt::new("INSERT INTO t VALUES ($1)").arg("kept")).await.expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(keys(&store).await, ["kept"]);
        // A conflict is reported as one, as through sqlx.
        let again = store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg("kept")).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A transaction rolled back inside a batch another request wrote to
    /// undoes only its own writes; the other's commit.
    #[tokio::test(flavor = "current_thread")]
    async fn a_rolled_back_transaction_leaves_its_batch_mates_writes() {
        let (store, dir) = store().await;
        let mate = {
            let store = store.clone();
            tokio::spawn(async move { store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg("mate")).await })
        };
        // The mate writes, then yields for others to join its batch.
        tokio::task::yield_now().await;
        assert!(!mate.is_finished(), "the mate waits for its batch");
        {
            let mut tx = store.write_tx().await.expect("joins the open batch");
            tx.run(&Stmt::new("INSERT INTO t VALUES ($1)").arg("undone")).await.expect("insert");
        }
        assert_eq!(mate.await.expect("task").expect("written"), 1);
        assert_eq!(keys(&store).await, ["mate"]);
        let batches = store.direct.as_ref().expect("direct").gate().await.batches();
        assert_eq!(batches, 1, "both were in one batch");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A hundred writes released together share commits, and each is
    /// answered only once its batch is in (a reader sees every row).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_in_shared_batches() {
        let (store, dir) = store().await;
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (store, gate) = (store.clone(), gate.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    let written = store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg(format!("{i:03}"))).await;
                    // Answered means committed: another connection sees it.
                    let seen = store
                        .read_opt(&Stmt::new("SELECT k FROM t WHERE k = $1").arg(format!("{i:03}")), |r| r.text("k"))
                        .await;
                    (written, seen)
                })
            })
            .collect();
        for t in tasks {
            let (written, seen) = t.await.expect("task");
            assert_eq!(written.expect("written"), 1);
            assert!(seen.expect("read").is_some(), "a write answered before its commit");
        }
        assert_eq!(keys(&store).await.len(), 100);
        let batches = store.direct.as_ref().expect("direct").gate().await.batches();
        assert!(batches < 100, "{batches} commits for 100 writes");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A member whose statement fails gets its error; the batch's other
    /// writes commit all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_fails_alone_in_its_batch() {
        let (store, dir) = store().await;
        store.write(&Stmt::new("INSERT INTO t VALUES ('taken')")).await.expect("first");
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, gate) = (store.clone(), gate.clone());
                let key = if i == 7 { "taken".to_owned() } else { format!("k{i:02}") };
                tokio::spawn(async move {
                    gate.wait().await;
                    store.write(&Stmt::new("INSERT INTO t VALUES ($1)").arg(key)).await
                })
            })
            .collect();
        let mut conflicts = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(1) => {}
                Err(StoreError::Conflict) => conflicts += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(conflicts, 1);
        assert_eq!(keys(&store).await.len(), 20, "the 19 others and the first row");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A request that goes away after writing, before its batch commits,
    /// leaves no batch open: the write commits and the writer stays free.
    #[tokio::test]
    async fn a_write_abandoned_before_its_commit_still_commits() {
        let (store, dir) = store().await;
        {
            let stmt = Stmt::new("INSERT INTO t VALUES ($1)").arg("abandoned");
            let mut write = Box::pin(store.write(&stmt));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(write.as_mut().poll(&mut cx).is_pending(), "it waits for its batch");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(keys(&store).await, ["abandoned"]);
        // An outside writer (sqlx, not gated) is not kept waiting.
        let outside = sqlx::query("INSERT INTO t VALUES ('outside')").execute(&store.pool);
        tokio::time::timeout(Duration::from_secs(2), outside).await.expect("in time").expect("insert");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The writer never checkpoints (a checkpoint there held up every
    /// waiting write), yet committed pages still reach the database file:
    /// the checkpointer thread copies them soon after the commit.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let (store, dir) = store().await;
        let direct = store.direct.clone().expect("SQLite has direct connections");
        let auto = direct.gate().await.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0));
        assert_eq!(auto.expect("pragma"), 0, "the writer leaves checkpoints to the checkpointer");
        let file = dir.join("t.db");
        let before = std::fs::metadata(&file).expect("db file").len();
        let mut tx = store.write_tx().await.expect("begin");
        for i in 0..200 {
            tx.run(&Stmt::new("INSERT INTO t VALUES ($1)").arg(format!("{i:04}{}", "x".repeat(2000))))
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        let mut grown = 0;
        for _ in 0..100 {
            grown = std::fs::metadata(&file).expect("db file").len().saturating_sub(before);
            if grown >= 400_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(grown >= 400_000, "400 KB of rows reached the database file: {grown} bytes did");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Under steady writes the WAL still starts over: past 16 MB the
    /// checkpointer syncs what it copied, copies the rest with the gate
    /// held, and the writer's next batch begins the WAL again. 48 MB of
    /// rows in 120 commits leave a WAL far smaller than they are, and every
    /// row is there when the database is opened afresh.
    #[tokio::test]
    async fn under_steady_writes_the_wal_starts_over_and_keeps_every_row() {
        let (store, dir) = store().await;
        let wal = dir.join("t.db-wal");
        let mut largest = 0;
        for batch in 0..120 {
            let mut tx = store.write_tx().await.expect("begin");
            for i in 0..200 {
                let row = format!("{batch:03}-{i:03}{}", "x".repeat(2000));
                tx.run(&Stmt::new("INSERT INTO t VALUES ($1)").arg(row)).await.expect("insert");
            }
            tx.commit().await.expect("commit");
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(largest < 40_000_000, "the WAL started over: it reached {largest} bytes for 48 MB of rows");
        store.close().await;
        let check = rusqlite::Connection::open(dir.join("t.db")).expect("open");
        let rows: i64 = check.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(rows, 24_000);
        drop(check);
        let _ = std::fs::remove_dir_all(dir);
    }
}
