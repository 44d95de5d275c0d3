//! An in-memory audit log.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::audit::{AuditEntry, AuditFilter, AuditLog};
use crate::error::StoreError;

#[derive(Default)]
pub struct MemAudit(pub Mutex<Vec<AuditEntry>>);

impl MemAudit {
    /// The kinds recorded, oldest first, each with its outcome.
    pub fn kinds(&self) -> Vec<(String, bool)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|e| (e.kind.clone(), e.success))
            .collect()
    }
}

impl MemAudit {
    /// Appends as the table would: ids increasing from 1.
    pub fn push(&self, entry: &AuditEntry) {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut entry = entry.clone();
        entry.id = i64::try_from(all.len()).unwrap_or(i64::MAX) + 1;
        all.push(entry);
    }
}

#[async_trait]
impl AuditLog for MemAudit {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.push(entry);
        Ok(())
    }

    async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(all
            .iter()
            .rev()
            .filter(|e| filter.account_id.as_ref().is_none_or(|a| e.account_id.as_ref() == Some(a)))
            .filter(|e| filter.kind.as_ref().is_none_or(|k| e.kind == *k))
            .filter(|e| filter.since.is_none_or(|s| e.at >= s))
            .filter(|e| filter.until.is_none_or(|u| e.at < u))
            .filter(|e| filter.before_id.is_none_or(|b| e.id < b))
            .take(usize::try_from(filter.limit).unwrap_or(0))
            .cloned()
            .collect())
    }
}
