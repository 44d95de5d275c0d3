//! Password change and reset (`security.md` §2.4, §2.7, SEC-06, SEC-42).
//!
//! A reset link carries 256 random bits, is stored as SHA-256, works once
//! and for 30 minutes; asking for one answers the same whether or not the
//! address has an account, and the mail leaves off the request path. A
//! reset ends every session, unlocks password sign-in, and never skips the
//! second factor: the next sign-in still asks for it. A change needs the
//! current password and a fresh re-auth, and ends the other sessions.

use std::sync::Arc;

use crate::abuse::throttle::Scope;
use crate::accounts::email::Email;
use crate::accounts::password::Password;
use crate::audit::{AuditKind, RequestContext};
use crate::error::{CredentialError, FactorError};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::signin::machine::PasswordCheck;
use crate::token::Token;

impl Twostep {
    /// "Forgot password", answered before any lookup: the lookup, the link
    /// and the mail happen in a task of their own, so the answer takes the
    /// same time whether or not the address has an account (SEC-14). A
    /// failure there is logged; the caller was told the same either way.
    pub fn request_password_reset_in_background(self: &Arc<Self>, email: &str, ctx: &RequestContext) {
        let this = Arc::clone(self);
        let email = email.to_owned();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.reset_permits.acquire().await else { return };
            if let Err(e) = this.request_password_reset(&email, &ctx).await {
                tracing::error!(error = %e, request_id = ctx.request_id, "password reset request failed");
            }
        });
    }

    /// "Forgot password" done in line. Always succeeds from the caller's
    /// point of view, but its time says whether the account exists: the
    /// HTTP paths use `request_password_reset_in_background`.
    pub async fn request_password_reset(&self, email: &str, ctx: &RequestContext) -> Result<(), CredentialError> {
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        // Capped per address so the form cannot flood an inbox (SEC-36).
        let scope = self.reset_scope(&email);
        let refused =
            self.store.take_allowance(&scope, self.now(), 3600, self.settings.reset_mails_per_hour).await?.is_some();
        if refused {
            crate::meters::throttle_refusal(crate::meters::cap::RESET_MAIL);
        }
        let Some(account) = self.store.account_by_email(&email).await? else { return Ok(()) };
        if refused {
            self.audit(
                AuditEvent::user(AuditKind::Throttled, &account.id).failed().details("password reset mail"),
                ctx,
            )
            .await;
            return Ok(());
        }
        let token = Token::generate(self.rng());
        let now = self.now();
        self.store.insert_reset(&token.hash(), &account.id, now, now.plus_secs(self.settings.reset_link_secs)).await?;
        let url = format!("{}/reset-password?token={}", self.settings.public_url, token.expose());
        self.audit(AuditEvent::user(AuditKind::PasswordResetRequested, &account.id), ctx).await;
        let two_factor = !self.store.factor_summary(&account.id, &[]).await?.kinds.is_empty();
        self.notify(&account.id, Notice::ResetLink { url, two_factor }, ctx).await;
        Ok(())
    }

    fn reset_scope(&self, email: &Email) -> String {
        let mac = self.keys.keyed_hash(crate::crypto::HashPurpose::ThrottleKey, &[b"reset", email.as_str().as_bytes()]);
        format!("reset:{}", data_encoding::HEXLOWER.encode(&mac[..16]))
    }

    /// Whether a reset link is still good (the page checks before asking
    /// for a new password).
    pub async fn reset_link_live(&self, token: &str) -> bool {
        matches!(self.store.reset_account(&Token::presented(token).hash(), self.now()).await, Ok(Some(_)))
    }

    /// Sets a new password from a reset link.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        let hash = Token::presented(token).hash();
        let now = self.now();
        let account_id = self.store.reset_account(&hash, now).await?.ok_or(CredentialError::InvalidResetLink)?;
        let account = self.store.account_by_id(&account_id).await?.ok_or(CredentialError::InvalidResetLink)?;
        // Judge the password before spending the link, so a weak one can be retried.
        let password =
            Password::new_checked(new_password, &self.settings.password_policy, &account.email.context_words())?;
        if self.store.consume_reset(&hash, now).await?.is_none() {
            return Err(CredentialError::InvalidResetLink);
        }
        let password_hash = self.hash_password(password).await?;
        self.store.set_password_hash(&account.id, &password_hash).await?;
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        self.store.delete_resets_of(&account.id).await?;
        self.store.delete_sessions_of(&account.id, None).await?;
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        self.store.delete_remembered_of(&account.id).await?;
        // The reset is the out-of-band unlock for password sign-in (§2.5).
        self.throttle_reset(&[Scope::Password(account.id.clone())]).await?;
        // The link reached this address: it is proven.
        if account.email_verified_at.is_none() {
            self.store.set_email_verified(&account.id, now).await?;
            self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        }
        self.audit(AuditEvent::user(AuditKind::PasswordReset, &account.id), ctx).await;
        self.notify(&account.id, Notice::PasswordReset, ctx).await;
        Ok(())
    }

    /// Changes the password of the signed-in account.
    pub async fn change_password(
        &self,
        me: &SignedIn,
        current: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        self.require_recent_auth(me).await.map_err(|e| match e {
            FactorError::Internal(i) => CredentialError::Internal(i),
            _ => CredentialError::ReauthRequired,
        })?;
        let check = match Password::for_sign_in(current) {
            Some(p) => self.guarded_password(Some(&me.account), Scope::Password(me.account.id.clone()), p, ctx).await?,
            None => PasswordCheck::Wrong,
        };
        match check {
            PasswordCheck::Right => {}
            PasswordCheck::Wrong => return Err(CredentialError::InvalidPassword),
            PasswordCheck::Throttled { retry_after } => return Err(CredentialError::Throttled { retry_after }),
        }
        let password =
            Password::new_checked(new_password, &self.settings.password_policy, &me.account.email.context_words())?;
        let hash = self.hash_password(password).await?;
        self.store.set_password_hash(&me.account.id, &hash).await?;
        self.sessions_changed(SessionChange::Account(me.account.id.clone())).await;
        self.end_other_sessions(&me.account.id, me).await?;
        self.store.delete_remembered_of(&me.account.id).await?;
        self.audit(AuditEvent::user(AuditKind::PasswordChanged, &me.account.id), ctx).await;
        self.notify(&me.account.id, Notice::PasswordChanged, ctx).await;
        Ok(())
    }

    async fn end_other_sessions(&self, account: &AccountId, me: &SignedIn) -> Result<(), CredentialError> {
        self.store.delete_sessions_of(account, Some(&me.session.id)).await?;
        self.sessions_changed(SessionChange::Account(account.clone())).await;
        Ok(())
    }
}
