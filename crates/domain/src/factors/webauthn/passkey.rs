//! Signing in with a passkey alone: no e-mail, no password. The key names
//! the account (a discoverable credential) and proves possession and a PIN
//! or biometric (user verification, required), so the session is a full
//! one that counts as two factors. The account checks of the password path
//! apply as they are: disabled accounts, the IP allow-list and the
//! second-factor throttle.

use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

use super::party::{Checked, user_handle};
use super::store::{CeremonyPurpose, CeremonyRecord};
use super::{CEREMONY_SECS, WEBAUTHN, ceremony_id};
use crate::abuse::throttle::{Scope, Verdict, address_key};
use crate::audit::{AuditKind, RequestContext};
use crate::error::LoginError;
use crate::meters::{self, SignInMethod, SignInResult};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::store::SessionKind;
use crate::signin::login::LoginOutcome;

/// A passkey sign-in begun: `navigator.credentials.get()` options and the
/// id to finish it with.
#[derive(Debug)]
pub struct PasskeyStarted {
    pub id: String,
    pub options: serde_json::Value,
}

/// Passkey sign-ins one address may begin a minute. Each stores a ceremony
/// until it expires, and anyone may ask without an account: the cap keeps
/// one source from filling the table. A sign-in page begins one per load
/// (the autofill), so a person never meets it.
pub const PASSKEY_STARTS_PER_MINUTE: i64 = 30;

impl Twostep {
    /// Callers check `passkey_sign_in_enabled` first, to say why; while
    /// it is off this refuses as for a wrong key, as a backstop.
    pub async fn start_passkey_sign_in(&self, ctx: &RequestContext) -> Result<PasskeyStarted, LoginError> {
        if !self.passkey_sign_in_enabled() {
            return Err(LoginError::InvalidCredentials);
        }
        // Decided and counted in one statement, so a burst cannot pass it.
        let scope = format!("passkey:address:{}", address_key(&ctx.ip));
        if let Some(retry_after) = self.store.take_allowance(&scope, self.now(), 60, PASSKEY_STARTS_PER_MINUTE).await? {
            meters::throttle_refusal(meters::cap::PASSKEY_START);
            self.audit(AuditEvent::anonymous(AuditKind::Throttled).failed().details("passkey"), ctx).await;
            return Err(LoginError::Throttled { retry_after: retry_after.max(1) });
        }
        let (options, state) =
            self.relying_party().map_err(internal_login)?.start_discoverable().map_err(internal_login)?;
        let id = ceremony_id(self);
        let now = self.now();
        self.store
            .insert_ceremony(&CeremonyRecord {
                id: id.clone(),
                account_id: None,
                purpose: CeremonyPurpose::Passkey,
                binding: String::new(),
                kind: String::new(),
                name: String::new(),
                state,
                created_at: now,
                expires_at: now.plus_secs(CEREMONY_SECS),
            })
            .await?;
        Ok(PasskeyStarted { id, options })
    }

    /// Every refusal is the one `invalid_credentials`, as for a wrong
    /// password: a caller learns nothing of which check failed.
    pub async fn finish_passkey_sign_in(
        &self,
        challenge: &str,
        credential: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, LoginError> {
        let refused = || {
            meters::sign_in(SignInResult::BadPassword, SignInMethod::Factor(WEBAUTHN));
            LoginError::InvalidCredentials
        };
        if !self.passkey_sign_in_enabled() {
            return Err(refused());
        }
        let now = self.now();
        // Spent whatever follows (SEC-57).
        let Some(ceremony) = self.store.take_passkey_ceremony(challenge).await?.filter(|c| now < c.expires_at) else {
            return Err(refused());
        };
        let Ok(response) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            return Err(refused());
        };
        let rp = self.relying_party().map_err(internal_login)?;
        let Some((handle, credential_id)) = rp.identify(&response) else { return Err(refused()) };
        // Only a key registered as a passkey (discoverable, with user
        // verification) signs in alone; a plain security key stays a second factor.
        let Some(mut record) = self.store.webauthn_credential(credential_id).await?.filter(|r| r.kind == "passkey")
        else {
            return Err(refused());
        };
        let account_id = record.account_id.clone();
        if user_handle(&account_id) != handle {
            return Err(refused());
        }
        let Some(account) = self.store.account_by_id(&account_id).await? else { return Err(refused()) };
        if account.disabled_at.is_some() {
            self.audit(
                AuditEvent::user(AuditKind::SignInPassword, &account_id).failed().details("passkey; account disabled"),
                ctx,
            )
            .await;
            return Err(refused());
        }
        if !self.address_allowed(&account_id, &ctx.ip).await? {
            let event = AuditEvent::user(AuditKind::SignInOutsideAllowlist, &account_id).failed().details("passkey");
            self.audit(event, ctx).await;
            return Err(refused());
        }
        let scopes = [Scope::SecondFactor(account_id.clone())];
        match self.throttle_admit(&scopes).await?.verdict {
            Verdict::Allow => {}
            Verdict::Locked => return Err(LoginError::FactorLocked),
            Verdict::Wait { retry_after } => return Err(LoginError::Throttled { retry_after: retry_after.max(1) }),
        }
        let Some(key) = serde_json::from_str::<Passkey>(&record.credential).ok() else { return Err(refused()) };
        let key_id = record.authenticator_id.to_string();
        let result = match rp.finish_discoverable(&ceremony.state, &response, &key).map_err(internal_login)? {
            Checked::Good(r) => r,
            Checked::Regressed(r) => {
                if self.sign_count_regressed(&account_id, key_id, ctx).await {
                    return Err(refused());
                }
                r
            }
            Checked::Refused(e) => {
                tracing::info!(reason = %e, "passkey sign-in refused");
                let event = AuditEvent::user(AuditKind::SignInSecondFactor, &account_id).failed();
                self.audit(event.details("passkey"), ctx).await;
                return Err(refused());
            }
        };
        self.throttle_reset(&scopes).await?;
        let mut key = key;
        key.update_credential(&result);
        record.after_use(serde_json::to_string(&key).ok(), &result);
        self.store.record_webauthn_use(&record, now).await?;
        // Possession and user verification: both factors, proven now.
        let (session, _) = self.sessions.start(&account_id, SessionKind::Full, Some(now), Some(now), ctx).await?;
        self.store.record_sign_in(&account_id, now).await?;
        self.signin.new_device_notice(&account_id, ctx).await;
        let event =
            AuditEvent::user(AuditKind::SignInSucceeded, &account_id).factor(record.authenticator_id.to_string());
        self.audit(event.details("passkey; two factors"), ctx).await;
        meters::sign_in(SignInResult::Success, SignInMethod::Factor(WEBAUTHN));
        Ok(LoginOutcome::Authenticated { session, account: account_id })
    }
}

#[expect(clippy::needless_pass_by_value, reason = "shaped for .map_err")]
fn internal_login(e: crate::error::FactorError) -> LoginError {
    LoginError::Internal(crate::error::InternalError(e.to_string()))
}
