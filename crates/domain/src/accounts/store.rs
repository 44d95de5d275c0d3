//! What accounts, password resets and remembered browsers need from storage.

use async_trait::async_trait;

use crate::accounts::email::Email;
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::token::TokenHash;

use crate::time::Timestamp;

#[derive(Clone, Debug)]
pub struct AccountRecord {
    pub id: AccountId,
    pub email: Email,
    pub password_hash: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    /// When the account proved it receives mail at `email`.
    pub email_verified_at: Option<Timestamp>,
    /// Since when the account is an operator (`twostep admin grant`); none by default (SEC-10).
    pub admin_since: Option<Timestamp>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// `StoreError::Conflict` when the e-mail is taken.
    async fn insert_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<AccountRecord>, StoreError>;
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError>;
    async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, StoreError>;
    /// `None` enables. Returns whether the account exists.
    async fn set_disabled(&self, id: &AccountId, at: Option<Timestamp>) -> Result<bool, StoreError>;
    async fn record_sign_in(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError>;
    async fn set_password_hash(&self, id: &AccountId, hash: &str) -> Result<(), StoreError>;
    async fn set_email_verified(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError>;
}

/// A browser that may skip the second factor for 30 days.
#[derive(Clone, Debug)]
pub struct RememberedBrowser {
    pub id: String,
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_reset(
        &self,
        id: &TokenHash,
        account: &AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes a live reset token; the account for exactly one caller.
    async fn consume_reset(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError>;
    /// The account of a live reset token, without using it up.
    async fn reset_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError>;
    async fn delete_resets_of(&self, account: &AccountId) -> Result<(), StoreError>;

    async fn insert_remembered(&self, browser: &RememberedBrowser) -> Result<(), StoreError>;
    async fn remembered(&self, token: &TokenHash) -> Result<Option<RememberedBrowser>, StoreError>;
    async fn touch_remembered(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;
    async fn remembered_of(&self, account: &AccountId) -> Result<Vec<RememberedBrowser>, StoreError>;
    async fn delete_remembered(&self, account: &AccountId, id: &str) -> Result<bool, StoreError>;
    async fn delete_remembered_of(&self, account: &AccountId) -> Result<(), StoreError>;
}
