//! Accounts: sign-up and the operator's account commands.

pub mod credentials;
pub mod email;
pub mod email_verification;
pub(crate) mod hasher;
pub mod password;
pub mod store;

use crate::abuse::throttle::address_key;
use crate::accounts::email::Email;
use crate::accounts::password::Password;
use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, AuditKind, RequestContext};
use crate::crypto::HashPurpose;
use crate::error::{AccountError, StoreError};
use crate::ids::AccountId;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::cache::SessionChange;

impl Twostep {
    /// Creates an account. The e-mail is checked before the password so a
    /// typo in the address is reported first; the password is judged
    /// against the policy and the address's own words.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let email = Email::parse(email)?;
        let password = Password::new_checked(password, &self.settings.password_policy, &email.context_words())?;
        if actor == Actor::User {
            self.sign_up_allowed(&email, ctx).await?;
        }
        if self.store.account_by_email(&email).await?.is_some() {
            return Err(AccountError::EmailTaken);
        }
        let hash = self.hash_password(password).await?;
        let record = AccountRecord {
            id: AccountId::generate(self.rng()),
            email,
            password_hash: hash,
            created_at: self.now(),
            disabled_at: None,
            last_sign_in_at: None,
            email_verified_at: None,
            admin_since: None,
        };
        match self.store.insert_account(&record).await {
            Ok(()) => {}
            // Two sign-ups racing for one address: the unique index decides.
            Err(StoreError::Conflict) => return Err(AccountError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit(AuditEvent::user(AuditKind::AccountCreated, &record.id).actor(actor), ctx).await;
        if let Err(e) = self.send_email_verification(&record.id, ctx).await {
            tracing::warn!(error = %e, "e-mail verification not sent");
        }
        Ok(record)
    }

    /// Counts a well-formed sign-up against its source address and its
    /// e-mail address, refusing it past either hourly cap, so `email_taken`
    /// cannot be used to test addresses in bulk. Each scope is decided and
    /// counted in one statement (`take_allowance`), never read then written.
    async fn sign_up_allowed(&self, email: &Email, ctx: &RequestContext) -> Result<(), AccountError> {
        const HOUR: i64 = 3600;
        let source = format!("signup:address:{}", address_key(&ctx.ip));
        let mac = self.keys.keyed_hash(HashPurpose::ThrottleKey, &[b"signup", email.as_str().as_bytes()]);
        let address = format!("signup:email:{}", data_encoding::HEXLOWER.encode(&mac[..16]));
        let caps =
            [(source, self.settings.signups_per_source_per_hour), (address, self.settings.signups_per_email_per_hour)];
        for (scope, cap) in caps {
            let now = self.now();
            if let Some(retry_after) = self.store.take_allowance(&scope, now, HOUR, cap).await? {
                crate::meters::throttle_refusal(crate::meters::cap::SIGNUP);
                self.audit(AuditEvent::anonymous(AuditKind::Throttled).failed().details("sign-up"), ctx).await;
                return Err(AccountError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    pub async fn account_by_email(&self, email: &str) -> Result<AccountRecord, AccountError> {
        let email = Email::parse(email)?;
        self.store.account_by_email(&email).await?.ok_or(AccountError::NotFound)
    }

    pub async fn account(&self, id: &AccountId) -> Result<AccountRecord, AccountError> {
        self.store.account_by_id(id).await?.ok_or(AccountError::NotFound)
    }

    pub async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, AccountError> {
        Ok(self.store.list_accounts(limit).await?)
    }

    pub async fn audit_entries(
        &self,
        filter: &crate::audit::AuditFilter,
    ) -> Result<Vec<crate::audit::AuditEntry>, AccountError> {
        Ok(self.store.entries(filter).await?)
    }

    /// Clears every failure counter of an account: the operator's unlock
    /// of password sign-in and code factors (§2.5).
    pub async fn unlock_account(
        &self,
        email: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let account = self.account_by_email(email).await?;
        self.store.reset_counters_of(&account.id).await?;
        self.audit(
            AuditEvent::user(AuditKind::FactorUnlocked, &account.id).actor(actor).details("operator unlock"),
            ctx,
        )
        .await;
        Ok(account)
    }

    /// Disables or re-enables an account. Disabling ends its sessions.
    pub async fn set_account_disabled(
        &self,
        email: &str,
        disabled: bool,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let account = self.account_by_email(email).await?;
        let at = disabled.then(|| self.now());
        self.store.set_disabled(&account.id, at).await?;
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        if disabled {
            self.store.delete_sessions_of(&account.id, None).await?;
            self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        }
        let kind = if disabled { AuditKind::AccountDisabled } else { AuditKind::AccountEnabled };
        self.audit(AuditEvent::user(kind, &account.id).actor(actor), ctx).await;
        self.account(&account.id).await
    }
}
