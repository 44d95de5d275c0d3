//! Proving the account's e-mail address (story E5). A verified address
//! receives security notices and may serve as the `email` fallback method.
//!
//! The mail carries a 6-digit code and a link with the code in it; the
//! link names the account rather than a session, so it works in whatever
//! browser the mail is opened in. Same rules as every sent code: only the
//! latest works, 5 wrong tries void it, sends are capped.

use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::sent_code::{CodeRequest, SendError, SentCode, mask_email};
use crate::ids::AccountId;
use crate::notify::store::Channel;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::cache::SessionChange;

impl Twostep {
    /// Mails a verification code and link. `Ok(None)` when the address is
    /// already verified.
    pub async fn send_email_verification(
        &self,
        account: &AccountId,
        ctx: &RequestContext,
    ) -> Result<Option<SentCode>, SendError> {
        let Some(a) = self.store.account_by_id(account).await? else { return Err(SendError::MethodUnavailable) };
        if a.email_verified_at.is_some() {
            return Ok(None);
        }
        let link = format!("{}/verify-email?account={}", self.settings.public_url, a.id);
        let request = CodeRequest {
            account: &a.id,
            purpose: CodePurpose::EmailVerify,
            channel: Channel::Email,
            destination: a.email.as_str(),
            calling_code: None,
            keep_destination: false,
            masked: mask_email(a.email.as_str()),
            binding: a.id.as_str(),
            lifetime_secs: self.settings.email_verify_secs,
            link: Some(link),
        };
        self.send_code(request, ctx).await.map(Some)
    }

    /// Checks a verification code; the address must still be the one the
    /// code was sent to.
    pub async fn confirm_email(&self, account: &str, code: &str, ctx: &RequestContext) -> Result<(), FactorError> {
        let id = AccountId::from_stored(account);
        let Some(a) = self.store.account_by_id(&id).await? else { return Err(FactorError::InvalidCode) };
        if a.email_verified_at.is_some() {
            return Ok(());
        }
        let key = self.destination_key(a.email.as_str());
        let same_address = |c: &crate::factors::sent_code::store::OobCodeRecord| c.destination == key;
        if self.check_code(&id, CodePurpose::EmailVerify, id.as_str(), same_address, code).await?.is_none() {
            self.audit(AuditEvent::user(AuditKind::EmailVerified, &id).failed().details("wrong or expired code"), ctx)
                .await;
            return Err(FactorError::InvalidCode);
        }
        self.store.set_email_verified(&id, self.now()).await?;
        self.sessions_changed(SessionChange::Account(id.clone())).await;
        self.audit(AuditEvent::user(AuditKind::EmailVerified, &id), ctx).await;
        Ok(())
    }
}
