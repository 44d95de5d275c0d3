//! An in-memory outbox table: leases and single claims as the SQL does them.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::notify::store::{OutboxFinish, OutboxRecord, OutboxStatus, OutboxStore};
use crate::time::Timestamp;

#[derive(Default)]
pub struct MemOutbox(pub Mutex<Vec<OutboxRecord>>);

impl MemOutbox {
    pub fn rows(&self) -> Vec<OutboxRecord> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut OutboxRecord) -> T) -> Option<T> {
        let mut rows = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.iter_mut().find(|r| r.id == id).map(f)
    }
}

#[async_trait]
impl OutboxStore for MemOutbox {
    async fn insert_outbox(&self, message: &OutboxRecord) -> Result<(), StoreError> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(message.clone());
        Ok(())
    }

    async fn due_outbox(&self, now: Timestamp, limit: i64) -> Result<Vec<OutboxRecord>, StoreError> {
        Ok(self
            .rows()
            .into_iter()
            .filter(|r| r.status == OutboxStatus::Pending && r.next_attempt_at <= now)
            .filter(|r| r.locked_until.is_none_or(|l| l <= now))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect())
    }

    async fn claim_outbox(&self, id: &str, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        Ok(self
            .with(id, |r| {
                let free = r.status == OutboxStatus::Pending && r.locked_until.is_none_or(|l| l <= now);
                if free {
                    r.locked_until = Some(until);
                }
                free
            })
            .unwrap_or(false))
    }

    async fn retry_outbox(&self, id: &str, attempts: i64, next: Timestamp, error: &str) -> Result<(), StoreError> {
        self.with(id, |r| {
            r.attempts = attempts;
            r.next_attempt_at = next;
            r.locked_until = None;
            r.last_error = Some(error.to_owned());
        });
        Ok(())
    }

    async fn release_outbox(&self, ids: &[String], lease: Timestamp) -> Result<u64, StoreError> {
        let mut n = 0;
        for id in ids {
            let released = self.with(id, |r| {
                let ours = r.status == OutboxStatus::Pending && r.locked_until == Some(lease);
                if ours {
                    r.locked_until = None;
                }
                ours
            });
            n += u64::from(released == Some(true));
        }
        Ok(n)
    }

    async fn finish_outbox(&self, id: &str, outcome: &OutboxFinish) -> Result<(), StoreError> {
        self.with(id, |r| {
            r.status = outcome.status;
            r.attempts = outcome.attempts;
            r.finished_at = Some(outcome.at);
            r.provider = Some(outcome.provider.clone());
            r.provider_id.clone_from(&outcome.provider_id);
            r.last_error.clone_from(&outcome.error);
            r.locked_until = None;
        });
        Ok(())
    }

    async fn recent_outbox(&self, limit: i64) -> Result<Vec<OutboxRecord>, StoreError> {
        Ok(self.rows().into_iter().rev().take(usize::try_from(limit).unwrap_or(0)).collect())
    }

    async fn purge_outbox(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut rows = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = rows.len();
        rows.retain(|r| r.finished_at.is_none_or(|f| f >= before));
        Ok(u64::try_from(n - rows.len()).unwrap_or(0))
    }
}
