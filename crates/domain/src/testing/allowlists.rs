//! The allow-lists kept beside the sessions that a lookup joins them to.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;
use crate::policy::store::{AllowlistRecord, AllowlistStore};
use crate::testing::sessions::MemSessions;

#[async_trait]
impl AllowlistStore for MemSessions {
    async fn allowlist(&self, account: &AccountId) -> Result<Vec<AllowlistRecord>, StoreError> {
        let lists = self.allowlists.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(lists.get(account.as_str()).cloned().unwrap_or_default())
    }

    async fn replace_allowlist(&self, account: &AccountId, entries: &[AllowlistRecord]) -> Result<(), StoreError> {
        let mut lists = self.allowlists.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lists.insert(account.as_str().to_owned(), entries.to_vec());
        Ok(())
    }
}
