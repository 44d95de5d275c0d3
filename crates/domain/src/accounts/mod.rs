//! Accounts: sign-up and the operator's account commands.

pub mod credentials;
pub mod email;
pub mod email_verification;
pub(crate) mod hasher;
pub mod password;
pub(crate) mod password_guard;
pub(crate) mod service;
pub mod store;

use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, RequestContext};
use crate::error::AccountError;
use crate::ids::AccountId;
use crate::service::Twostep;

impl Twostep {
    /// Creates an account (see `Accounts::sign_up`) and mails the code that
    /// verifies its address.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let record = self.accounts.sign_up(email, password, actor, ctx).await?;
        if let Err(e) = self.send_email_verification(&record.id, ctx).await {
            tracing::warn!(error = %e, "e-mail verification not sent");
        }
        Ok(record)
    }

    pub async fn account_by_email(&self, email: &str) -> Result<AccountRecord, AccountError> {
        self.accounts.by_email(email).await
    }

    pub async fn account(&self, id: &AccountId) -> Result<AccountRecord, AccountError> {
        self.accounts.by_id(id).await
    }

    pub async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, AccountError> {
        Ok(self.store.list_accounts(limit).await?)
    }

    pub async fn audit_entries(
        &self,
        filter: &crate::audit::AuditFilter,
    ) -> Result<Vec<crate::audit::AuditEntry>, AccountError> {
        Ok(self.auditor.entries(filter).await?)
    }

    /// The operator's unlock of password sign-in and code factors (§2.5).
    pub async fn unlock_account(
        &self,
        email: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        self.accounts.unlock(email, actor, ctx).await
    }

    /// Disables or re-enables an account. Disabling ends its sessions.
    pub async fn set_account_disabled(
        &self,
        email: &str,
        disabled: bool,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        self.accounts.set_disabled(email, disabled, actor, ctx).await
    }
}
