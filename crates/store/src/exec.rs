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
            Some(d) => direct::rows(&*d.gate().await, s, f),
            None => s.sqlx().fetch_all(&self.pool).await.map_err(store_err)?.iter().map(|r| f(r)).collect(),
        }
    }

    /// A single-statement write returning at most one row.
    pub(crate) async fn write_opt<T: Send>(
        &self,
        s: &Stmt<'_>,
        f: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.write_all(s, f).await?.into_iter().next())
    }

    /// A single-statement write: how many rows it changed.
    pub(crate) async fn write(&self, s: &Stmt<'_>) -> Result<u64, StoreError> {
        match &self.direct {
            Some(d) => direct::run(&*d.gate().await, s),
            None => Ok(s.sqlx().execute(&self.pool).await.map_err(store_err)?.rows_affected()),
        }
    }

    /// A write transaction for `Stmt`s: on SQLite the writer connection,
    /// holding the write lock from the start (BEGIN IMMEDIATE).
    pub(crate) async fn write_tx(&self) -> Result<Tx<'_>, StoreError> {
        match &self.direct {
            Some(d) => {
                let conn = d.gate().await;
                conn.execute_batch("BEGIN IMMEDIATE").map_err(crate::sql::direct_err)?;
                Ok(Tx::Direct { conn, open: true })
            }
            None => Ok(Tx::Pool(Some(self.pool.begin().await.map_err(store_err)?))),
        }
    }

    /// A sqlx transaction. On SQLite it holds the write gate until it ends,
    /// so no direct write blocks a thread on a lock that only this
    /// transaction's task, waiting for a thread, could release.
    pub(crate) async fn begin(&self) -> Result<Gated<'_>, StoreError> {
        let gate = match &self.direct {
            Some(d) => Some(d.gate().await),
            None => None,
        };
        let tx = self.pool.begin().await.map_err(store_err)?;
        Ok(Gated { tx, _gate: gate })
    }
}

/// A sqlx transaction and, on SQLite, the write gate it holds.
pub(crate) struct Gated<'a> {
    tx: Transaction<'static, Any>,
    _gate: Option<tokio::sync::MutexGuard<'a, rusqlite::Connection>>,
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
        conn: tokio::sync::MutexGuard<'a, rusqlite::Connection>,
        open: bool,
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
            Tx::Direct { conn, .. } => direct::rows(conn, s, f),
            Tx::Pool(tx) => {
                let tx = tx.as_mut().ok_or_else(ended)?;
                s.sqlx().fetch_all(&mut **tx).await.map_err(store_err)?.iter().map(|r| f(r)).collect()
            }
        }
    }

    pub async fn run(&mut self, s: &Stmt<'_>) -> Result<u64, StoreError> {
        match self {
            Tx::Direct { conn, .. } => direct::run(conn, s),
            Tx::Pool(tx) => {
                let tx = tx.as_mut().ok_or_else(ended)?;
                Ok(s.sqlx().execute(&mut **tx).await.map_err(store_err)?.rows_affected())
            }
        }
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        match &mut self {
            Tx::Direct { conn, open } => {
                conn.execute_batch("COMMIT").map_err(crate::sql::direct_err)?;
                *open = false;
                Ok(())
            }
            Tx::Pool(tx) => tx.take().ok_or_else(ended)?.commit().await.map_err(store_err),
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if let Tx::Direct { conn, open: true } = self {
            // Nothing of it was committed; the writer must not stay inside
            // it. A failed ROLLBACK (none was open) leaves nothing behind.
            let _ = conn.execute_batch("ROLLBACK");
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
}
