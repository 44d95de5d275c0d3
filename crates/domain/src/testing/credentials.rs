//! In-memory reset links and remembered browsers.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::accounts::store::{CredentialStore, RememberedBrowser};
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::time::Timestamp;
use crate::token::TokenHash;

#[derive(Default)]
pub struct MemCredentials {
    /// (link hash, account, expires)
    resets: Mutex<Vec<(TokenHash, AccountId, Timestamp)>>,
    pub remembered: Mutex<Vec<RememberedBrowser>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemCredentials {
    pub fn resets(&self) -> usize {
        lock(&self.resets).len()
    }
}

#[async_trait]
impl CredentialStore for MemCredentials {
    async fn insert_reset(
        &self,
        id: &TokenHash,
        account: &AccountId,
        _: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        lock(&self.resets).push((id.clone(), account.clone(), until));
        Ok(())
    }

    async fn consume_reset(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError> {
        let mut resets = lock(&self.resets);
        let Some(at) = resets.iter().position(|(h, _, until)| h == id && now < *until) else { return Ok(None) };
        Ok(Some(resets.remove(at).1))
    }

    async fn reset_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError> {
        Ok(lock(&self.resets).iter().find(|(h, _, until)| h == id && now < *until).map(|(_, a, _)| a.clone()))
    }

    async fn delete_resets_of(&self, account: &AccountId) -> Result<(), StoreError> {
        lock(&self.resets).retain(|(_, a, _)| a != account);
        Ok(())
    }

    async fn insert_remembered(&self, browser: &RememberedBrowser) -> Result<(), StoreError> {
        lock(&self.remembered).push(browser.clone());
        Ok(())
    }

    async fn remembered(&self, token: &TokenHash) -> Result<Option<RememberedBrowser>, StoreError> {
        Ok(lock(&self.remembered).iter().find(|b| b.token_hash == *token).cloned())
    }

    async fn touch_remembered(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        if let Some(b) = lock(&self.remembered).iter_mut().find(|b| b.id == id) {
            b.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn remembered_of(&self, account: &AccountId) -> Result<Vec<RememberedBrowser>, StoreError> {
        Ok(lock(&self.remembered).iter().filter(|b| b.account_id == *account).cloned().collect())
    }

    async fn delete_remembered(&self, account: &AccountId, id: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.remembered);
        let n = all.len();
        all.retain(|b| !(b.account_id == *account && b.id == id));
        Ok(all.len() < n)
    }

    async fn delete_remembered_of(&self, account: &AccountId) -> Result<(), StoreError> {
        lock(&self.remembered).retain(|b| b.account_id != *account);
        Ok(())
    }
}
