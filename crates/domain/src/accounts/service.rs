//! `Accounts`: sign-up, the operator's account commands, and password
//! change and reset (`security.md` §2.4, §2.7, SEC-06, SEC-14, SEC-36,
//! SEC-42). It holds the account and credential stores, the allowances
//! that cap sign-ups and reset mails, the password guard and hasher,
//! sessions (a reset or change ends them), the audit log and notices; it
//! reads factors only to word the reset mail.
//!
//! A reset link carries 256 random bits, is stored as SHA-256, works once
//! and for 30 minutes; asking for one answers the same whether or not the
//! address has an account. A reset ends every session, unlocks password
//! sign-in, and never skips the second factor: the next sign-in still asks
//! for it. A change needs the current password (and, checked by the
//! caller, a fresh re-auth), and ends the other sessions.

use std::sync::Arc;

use crate::abuse::store::ThrottleStore;
use crate::abuse::throttle::{Scope, address_key};
use crate::abuse::throttles::Throttles;
use crate::accounts::email::Email;
use crate::accounts::hasher::Hasher;
use crate::accounts::password::{Password, PasswordPolicy};
use crate::accounts::password_guard::PasswordGuard;
use crate::accounts::store::{AccountRecord, AccountStore, CredentialStore};
use crate::audit::{Actor, AuditEvent, AuditKind, Auditor, RequestContext};
use crate::crypto::{HashPurpose, Keyring};
use crate::error::{AccountError, CredentialError, StoreError};
use crate::factors::store::FactorStore;
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::ports::{Clock, Rng};
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::sessions::service::Sessions;
use crate::settings::Settings;
use crate::signin::machine::PasswordCheck;
use crate::token::Token;

const HOUR: i64 = 3600;

/// What the operator set for accounts.
#[derive(Clone, Debug)]
pub(crate) struct AccountRules {
    pub password_policy: PasswordPolicy,
    pub public_url: String,
    pub reset_link_secs: i64,
    pub reset_mails_per_hour: i64,
    pub signups_per_source_per_hour: i64,
    pub signups_per_email_per_hour: i64,
}

impl AccountRules {
    pub fn of(settings: &Settings) -> Self {
        Self {
            password_policy: settings.password_policy.clone(),
            public_url: settings.public_url.clone(),
            reset_link_secs: settings.reset_link_secs,
            reset_mails_per_hour: settings.reset_mails_per_hour,
            signups_per_source_per_hour: settings.signups_per_source_per_hour,
            signups_per_email_per_hour: settings.signups_per_email_per_hour,
        }
    }
}

pub(crate) struct Accounts {
    pub store: Arc<dyn AccountStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub factors: Arc<dyn FactorStore>,
    pub allowances: Arc<dyn ThrottleStore>,
    pub throttles: Arc<Throttles>,
    pub guard: Arc<PasswordGuard>,
    pub hasher: Arc<Hasher>,
    pub sessions: Arc<Sessions>,
    pub auditor: Arc<Auditor>,
    pub notices: Arc<Notices>,
    pub keys: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub rules: AccountRules,
}

impl Accounts {
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
        let password = Password::new_checked(password, &self.rules.password_policy, &email.context_words())?;
        if actor == Actor::User {
            self.sign_up_allowed(&email, ctx).await?;
        }
        if self.store.account_by_email(&email).await?.is_some() {
            return Err(AccountError::EmailTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let record = AccountRecord {
            id: AccountId::generate(self.rng.as_ref()),
            email,
            password_hash: hash,
            created_at: self.clock.now(),
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
        self.auditor.record(AuditEvent::user(AuditKind::AccountCreated, &record.id).actor(actor), ctx).await;
        Ok(record)
    }

    /// Counts a well-formed sign-up against its source address and its
    /// e-mail address, refusing it past either hourly cap, so `email_taken`
    /// cannot be used to test addresses in bulk. Each scope is decided and
    /// counted in one statement (`take_allowance`), never read then written.
    async fn sign_up_allowed(&self, email: &Email, ctx: &RequestContext) -> Result<(), AccountError> {
        let source = format!("signup:address:{}", address_key(&ctx.ip));
        let address = format!("signup:email:{}", self.keyed(b"signup", email));
        let caps = [(source, self.rules.signups_per_source_per_hour), (address, self.rules.signups_per_email_per_hour)];
        for (scope, cap) in caps {
            if let Some(retry_after) = self.allowances.take_allowance(&scope, self.clock.now(), HOUR, cap).await? {
                crate::meters::throttle_refusal(crate::meters::cap::SIGNUP);
                self.auditor.record(AuditEvent::anonymous(AuditKind::Throttled).failed().details("sign-up"), ctx).await;
                return Err(AccountError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    /// A keyed hash of an address for a counter's name, so the counters do
    /// not list the addresses tried.
    fn keyed(&self, purpose: &[u8], email: &Email) -> String {
        let mac = self.keys.keyed_hash(HashPurpose::ThrottleKey, &[purpose, email.as_str().as_bytes()]);
        data_encoding::HEXLOWER.encode(&mac[..16])
    }

    pub async fn by_email(&self, email: &str) -> Result<AccountRecord, AccountError> {
        let email = Email::parse(email)?;
        self.store.account_by_email(&email).await?.ok_or(AccountError::NotFound)
    }

    pub async fn by_id(&self, id: &AccountId) -> Result<AccountRecord, AccountError> {
        self.store.account_by_id(id).await?.ok_or(AccountError::NotFound)
    }

    /// Clears every failure counter of an account: the operator's unlock
    /// of password sign-in and code factors (§2.5).
    pub async fn unlock(&self, email: &str, actor: Actor, ctx: &RequestContext) -> Result<AccountRecord, AccountError> {
        let account = self.by_email(email).await?;
        self.allowances.reset_counters_of(&account.id).await?;
        let event = AuditEvent::user(AuditKind::FactorUnlocked, &account.id).actor(actor);
        self.auditor.record(event.details("operator unlock"), ctx).await;
        Ok(account)
    }

    /// Disables or re-enables an account. Disabling ends its sessions.
    pub async fn set_disabled(
        &self,
        email: &str,
        disabled: bool,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let account = self.by_email(email).await?;
        let at = disabled.then(|| self.clock.now());
        self.store.set_disabled(&account.id, at).await?;
        self.sessions.changed(SessionChange::Account(account.id.clone())).await;
        if disabled {
            self.sessions.end_all_of(&account.id, None).await?;
        }
        let kind = if disabled { AuditKind::AccountDisabled } else { AuditKind::AccountEnabled };
        self.auditor.record(AuditEvent::user(kind, &account.id).actor(actor), ctx).await;
        self.by_id(&account.id).await
    }

    /// "Forgot password" done in line. Always succeeds from the caller's
    /// point of view, but its time says whether the account exists: the
    /// HTTP paths answer first and do this off the request
    /// (`Twostep::request_password_reset_in_background`).
    pub async fn request_reset(&self, email: &str, ctx: &RequestContext) -> Result<(), CredentialError> {
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        // Capped per address so the form cannot flood an inbox (SEC-36).
        let scope = format!("reset:{}", self.keyed(b"reset", &email));
        let cap = self.rules.reset_mails_per_hour;
        let refused = self.allowances.take_allowance(&scope, self.clock.now(), HOUR, cap).await?.is_some();
        if refused {
            crate::meters::throttle_refusal(crate::meters::cap::RESET_MAIL);
        }
        let Some(account) = self.store.account_by_email(&email).await? else { return Ok(()) };
        if refused {
            let event = AuditEvent::user(AuditKind::Throttled, &account.id).failed();
            self.auditor.record(event.details("password reset mail"), ctx).await;
            return Ok(());
        }
        let token = Token::generate(self.rng.as_ref());
        let now = self.clock.now();
        let until = now.plus_secs(self.rules.reset_link_secs);
        self.credentials.insert_reset(&token.hash(), &account.id, now, until).await?;
        let url = format!("{}/reset-password?token={}", self.rules.public_url, token.expose());
        self.auditor.record(AuditEvent::user(AuditKind::PasswordResetRequested, &account.id), ctx).await;
        let two_factor = !self.factors.authenticators(&account.id).await?.is_empty();
        self.notices.notify(&account.id, Notice::ResetLink { url, two_factor }, ctx).await;
        Ok(())
    }

    /// Whether a reset link is still good (the page checks before asking
    /// for a new password).
    pub async fn reset_link_live(&self, token: &str) -> bool {
        matches!(self.credentials.reset_account(&Token::presented(token).hash(), self.clock.now()).await, Ok(Some(_)))
    }

    /// Sets a new password from a reset link.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        let hash = Token::presented(token).hash();
        let now = self.clock.now();
        let account_id = self.credentials.reset_account(&hash, now).await?.ok_or(CredentialError::InvalidResetLink)?;
        let account = self.store.account_by_id(&account_id).await?.ok_or(CredentialError::InvalidResetLink)?;
        // Judge the password before spending the link, so a weak one can be retried.
        let password =
            Password::new_checked(new_password, &self.rules.password_policy, &account.email.context_words())?;
        if self.credentials.consume_reset(&hash, now).await?.is_none() {
            return Err(CredentialError::InvalidResetLink);
        }
        let password_hash = self.hasher.hash(password).await?;
        self.store.set_password_hash(&account.id, &password_hash).await?;
        self.sessions.changed(SessionChange::Account(account.id.clone())).await;
        self.credentials.delete_resets_of(&account.id).await?;
        self.sessions.end_all_of(&account.id, None).await?;
        self.credentials.delete_remembered_of(&account.id).await?;
        // The reset is the out-of-band unlock for password sign-in (§2.5).
        self.throttles.reset(&[Scope::Password(account.id.clone())]).await?;
        // The link reached this address: it is proven.
        if account.email_verified_at.is_none() {
            self.store.set_email_verified(&account.id, now).await?;
            self.sessions.changed(SessionChange::Account(account.id.clone())).await;
        }
        self.auditor.record(AuditEvent::user(AuditKind::PasswordReset, &account.id), ctx).await;
        self.notices.notify(&account.id, Notice::PasswordReset, ctx).await;
        Ok(())
    }

    /// Changes the password of the signed-in account; the caller has
    /// checked the re-auth window. Ends the other sessions (SEC-06).
    pub async fn change_password(
        &self,
        me: &SignedIn,
        current: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        let check = match Password::for_sign_in(current) {
            Some(p) => {
                self.guard.check(Some(&me.account), Scope::Password(me.account.id.clone()), p, true, ctx).await?.0
            }
            None => PasswordCheck::Wrong,
        };
        match check {
            PasswordCheck::Right => {}
            PasswordCheck::Wrong => return Err(CredentialError::InvalidPassword),
            PasswordCheck::Throttled { retry_after } => return Err(CredentialError::Throttled { retry_after }),
        }
        let password =
            Password::new_checked(new_password, &self.rules.password_policy, &me.account.email.context_words())?;
        let hash = self.hasher.hash(password).await?;
        self.store.set_password_hash(&me.account.id, &hash).await?;
        self.sessions.changed(SessionChange::Account(me.account.id.clone())).await;
        self.sessions.end_all_of(&me.account.id, Some(&me.session.id)).await?;
        self.credentials.delete_remembered_of(&me.account.id).await?;
        self.auditor.record(AuditEvent::user(AuditKind::PasswordChanged, &me.account.id), ctx).await;
        self.notices.notify(&me.account.id, Notice::PasswordChanged, ctx).await;
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
