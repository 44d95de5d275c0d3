//! The operator role and the admin's account search over the accounts kept
//! beside the sessions.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;
use crate::policy::store::{AccountQuery, AccountSummary, AdminStore};
use crate::testing::sessions::MemSessions;
use crate::time::Timestamp;

#[async_trait]
impl AdminStore for MemSessions {
    async fn set_admin(&self, id: &AccountId, since: Option<Timestamp>) -> Result<bool, StoreError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(accounts.get_mut(id.as_str()).map(|a| a.admin_since = since).is_some())
    }

    /// By address text only; factor kinds are not kept here.
    async fn search_accounts(&self, query: &AccountQuery) -> Result<Vec<AccountSummary>, StoreError> {
        let accounts = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = query.text.as_deref().unwrap_or("").to_lowercase();
        let mut found: Vec<AccountSummary> = accounts
            .values()
            .filter(|a| a.email.as_str().contains(&text) || a.id.as_str() == text)
            .map(|a| AccountSummary { account: a.clone(), factor_kinds: Vec::new() })
            .collect();
        found.sort_by(|a, b| a.account.email.as_str().cmp(b.account.email.as_str()));
        found.truncate(usize::try_from(query.limit).unwrap_or(0));
        Ok(found)
    }
}
