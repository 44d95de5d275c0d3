//! Numbers for the operator's metrics, read at scrape time.

use sqlx::Row;
use twostep_domain::error::StoreError;

use crate::{SqlStore, store_err};

/// The delivery backlog: pending messages and the oldest one's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub pending: i64,
    /// Unix seconds; `None` when nothing is pending.
    pub oldest_created_at: Option<i64>,
}

impl SqlStore {
    pub async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(OutboxBacklog {
            pending: row.try_get(0).map_err(store_err)?,
            oldest_created_at: row.try_get(1).map_err(store_err)?,
        })
    }

    /// Connections open and idle in the pool.
    pub fn pool_use(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}
