//! The delivery outbox: rows claimed by one worker at a time with a lease,
//! so several instances can share one table without sending twice.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::notify::store::{Channel, OutboxFinish, OutboxRecord, OutboxStatus, OutboxStore};
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::{SqlStore, store_err};

const COLUMNS: &str = "id, account_id, channel, payload_sealed, status, attempts, created_at, next_attempt_at, \
                       expires_at, locked_until, provider, provider_id, last_error, finished_at";

fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(col).map_err(store_err)
}

fn outbox(row: &AnyRow) -> Result<OutboxRecord, StoreError> {
    let channel = text(row, "channel")?;
    Ok(OutboxRecord {
        id: text(row, "id")?,
        account_id: opt_text(row, "account_id")?.map(AccountId::from_stored),
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::Backend(format!("unknown outbox channel {channel:?}")))?,
        payload_sealed: row.try_get::<Vec<u8>, _>("payload_sealed").map_err(store_err)?,
        status: OutboxStatus::from_stored(&text(row, "status")?),
        attempts: row.try_get::<i64, _>("attempts").map_err(store_err)?,
        created_at: ts(row, "created_at")?,
        next_attempt_at: ts(row, "next_attempt_at")?,
        expires_at: ts(row, "expires_at")?,
        locked_until: opt_ts(row, "locked_until")?,
        provider: opt_text(row, "provider")?,
        provider_id: opt_text(row, "provider_id")?,
        last_error: opt_text(row, "last_error")?,
        finished_at: opt_ts(row, "finished_at")?,
    })
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn insert_outbox(&self, m: &OutboxRecord) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(&format!(
            "INSERT INTO outbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&m.id)
        .bind(m.account_id.as_ref().map(AccountId::as_str))
        .bind(m.channel.as_str())
        .bind(&m.payload_sealed)
        .bind(m.status.as_str())
        .bind(m.attempts)
        .bind(m.created_at.secs())
        .bind(m.next_attempt_at.secs())
        .bind(m.expires_at.secs())
        .bind(opt_secs(m.locked_until))
        .bind(m.provider.as_deref())
        .bind(m.provider_id.as_deref())
        .bind(m.last_error.as_deref())
        .bind(opt_secs(m.finished_at))
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn due_outbox(&self, now: Timestamp, limit: i64) -> Result<Vec<OutboxRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at, created_at LIMIT $2"
        ))
        .bind(now.secs())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(outbox)
        .collect()
    }

    async fn claim_outbox(&self, id: &str, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query(
            "UPDATE outbox SET locked_until = $1
             WHERE id = $2 AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $3)",
        )
        .bind(until.secs())
        .bind(id)
        .bind(now.secs())
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry_outbox(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "UPDATE outbox SET attempts = $1, next_attempt_at = $2, last_error = $3, locked_until = NULL WHERE id = $4",
        )
        .bind(attempts)
        .bind(next_attempt_at.secs())
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn release_outbox(&self, ids: &[String], lease: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        if ids.is_empty() {
            return Ok(0);
        }
        // One statement, so the hand-back is all or nothing; the lease time
        // fences it: a row finished since (its lease cleared) or taken over
        // after ours ran out (a later lease) does not match.
        let list = (0..ids.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE outbox SET locked_until = NULL WHERE status = 'pending' AND locked_until = $1 AND id IN ({list})"
        );
        let mut q = sqlx::query(&sql).bind(lease.secs());
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.execute(&self.pool).await.map_err(store_err)?.rows_affected())
    }

    async fn finish_outbox(&self, id: &str, f: &OutboxFinish) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "UPDATE outbox SET status = $1, attempts = $2, finished_at = $3, provider = $4, provider_id = $5,
                    last_error = $6, locked_until = NULL
             WHERE id = $7",
        )
        .bind(f.status.as_str())
        .bind(f.attempts)
        .bind(f.at.secs())
        .bind(&f.provider)
        .bind(f.provider_id.as_deref())
        .bind(f.error.as_deref())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn recent_outbox(&self, limit: i64) -> Result<Vec<OutboxRecord>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM outbox ORDER BY created_at DESC, id LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(outbox)
            .collect()
    }

    async fn purge_outbox(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("DELETE FROM outbox WHERE status <> 'pending' AND finished_at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected())
    }
}
