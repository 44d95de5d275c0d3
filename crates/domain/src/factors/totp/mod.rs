//! Authenticator apps: enrolment by QR code, confirmation, sign-in codes and
//! the replay guard (`security.md` §2.1).
//!
//! Every enrolment makes a new 160-bit secret and voids the account's
//! earlier unconfirmed ones; an enrolment lives 10 minutes. Secrets are
//! sealed with AES-256-GCM bound to their row. A code is accepted within ±1
//! step, and only if its step is above the authenticator's `last_step`,
//! which one atomic UPDATE advances, so a code works once even when two
//! requests race on two instances.

mod factor;
pub mod otp;
pub mod otpauth;

pub(crate) use factor::TotpFactor;
pub use factor::{TOTP, TOTP_COUNTER, TOTP_KIND};

use zeroize::Zeroizing;

use crate::audit::{AuditKind, RequestContext};
use crate::crypto::{SealedColumn, SealedField};
use crate::error::FactorError;
use crate::factors::added::Added;
use crate::factors::recovery::code::RecoveryCode;
use crate::factors::store::{AuthenticatorRecord, ConfirmOutcome, EnrollmentRecord, StepSpend};
use crate::factors::totp::otp::{TotpParams, verify_totp};
use crate::factors::totp::otpauth::{base32_encode, otpauth_uri, qr_png, qr_svg};
use crate::ids::{AccountId, AuthenticatorId, EnrollmentId};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::token::Token;

const SECRET_BYTES: usize = 20;
const WINDOW: u64 = 1;
const MAX_NAME_CHARS: usize = 64;

pub(crate) fn enrollment_field(id: &EnrollmentId) -> SealedField<'_> {
    SealedColumn::TotpEnrollment.field(id.as_str())
}

pub(crate) fn authenticator_field(id: &AuthenticatorId) -> SealedField<'_> {
    SealedColumn::Authenticator.field(id.as_str())
}

/// What the user needs to add the account to an app. Shown once.
pub struct TotpEnrollment {
    pub id: EnrollmentId,
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpEnrollment({}, [redacted])", self.id)
    }
}

/// A confirmed authenticator, and the recovery codes when it turned 2FA on.
#[derive(Debug)]
pub struct Confirmed {
    pub authenticator: AuthenticatorRecord,
    pub recovery_codes: Option<Vec<RecoveryCode>>,
    /// The new session token when confirming ended an enrolment-only
    /// session (SEC-52); the presented one no longer works.
    pub session_token: Option<Token>,
}

impl Twostep {
    pub async fn start_totp_enrollment(
        &self,
        me: &SignedIn,
        ctx: &RequestContext,
    ) -> Result<TotpEnrollment, FactorError> {
        self.require_recent_auth(me).await?;
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        self.rng().fill(secret.as_mut());
        let id = EnrollmentId::generate(self.rng());
        let now = self.now();
        let record = EnrollmentRecord {
            id: id.clone(),
            account_id: me.account.id.clone(),
            secret_sealed: self.keys.seal(secret.as_ref(), enrollment_field(&id), self.rng()),
            created_at: now,
            expires_at: now.plus_secs(self.settings.enrollment_secs),
        };
        self.store.replace_enrollment(&record).await?;
        let uri =
            otpauth_uri(&self.settings.totp_issuer, me.account.email.as_str(), secret.as_ref(), TotpParams::DEFAULT);
        let svg = qr_svg(&uri).map_err(|e| FactorError::Internal(crate::error::InternalError(e.to_string())))?;
        self.audit(AuditEvent::user(AuditKind::TotpEnrollmentStarted, &me.account.id), ctx).await;
        Ok(TotpEnrollment { id, secret_base32: base32_encode(secret.as_ref()), otpauth_uri: uri, qr_svg: svg })
    }

    /// A pending enrolment shown again (after a mistyped code, or as a PNG).
    pub async fn pending_enrollment(&self, me: &SignedIn, enrollment: &str) -> Result<TotpEnrollment, FactorError> {
        let id = EnrollmentId::from_stored(enrollment);
        let now = self.now();
        let record = self
            .store
            .enrollment(&id)
            .await?
            .filter(|e| e.account_id == me.account.id && now < e.expires_at)
            .ok_or(FactorError::EnrollmentGone)?;
        let secret = Zeroizing::new(self.keys.open(&record.secret_sealed, enrollment_field(&id))?);
        let uri = otpauth_uri(&self.settings.totp_issuer, me.account.email.as_str(), &secret, TotpParams::DEFAULT);
        let svg = qr_svg(&uri).map_err(|e| FactorError::Internal(crate::error::InternalError(e.to_string())))?;
        Ok(TotpEnrollment { id, secret_base32: base32_encode(&secret), otpauth_uri: uri, qr_svg: svg })
    }

    pub async fn enrollment_qr_png(&self, me: &SignedIn, enrollment: &str) -> Result<Vec<u8>, FactorError> {
        let e = self.pending_enrollment(me, enrollment).await?;
        qr_png(&e.otpauth_uri, 6).map_err(|e| FactorError::Internal(crate::error::InternalError(e.to_string())))
    }

    pub async fn confirm_totp(
        &self,
        me: &SignedIn,
        enrollment: &str,
        code: &str,
        name: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Confirmed, FactorError> {
        self.require_recent_auth(me).await?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) => {
                return Err(FactorError::InvalidName);
            }
            Some(n) => n.to_owned(),
            None => "Authenticator app".to_owned(),
        };
        let enrollment_id = EnrollmentId::from_stored(enrollment);
        let now = self.now();
        let record = self
            .store
            .enrollment(&enrollment_id)
            .await?
            .filter(|e| e.account_id == me.account.id && now < e.expires_at)
            .ok_or(FactorError::EnrollmentGone)?;
        let secret = Zeroizing::new(self.keys.open(&record.secret_sealed, enrollment_field(&enrollment_id))?);
        let Some(step) = verify_totp(&secret, code, now.secs(), TotpParams::DEFAULT, WINDOW, None) else {
            return Err(FactorError::InvalidCode);
        };
        let id = AuthenticatorId::generate(self.rng());
        let authenticator = AuthenticatorRecord {
            secret_sealed: self.keys.seal(&secret, authenticator_field(&id), self.rng()),
            id,
            account_id: me.account.id.clone(),
            kind: "totp".to_owned(),
            name,
            // The confirming code's step is spent: it must not sign in too (SEC-21).
            last_step: i64::try_from(step).unwrap_or(i64::MAX),
            created_at: now,
            last_used_at: Some(now),
        };
        let (codes, records) = self.new_recovery_set(&me.account.id);
        match self.store.confirm_enrollment(&enrollment_id, &authenticator, &records).await? {
            ConfirmOutcome::Gone => Err(FactorError::EnrollmentGone),
            ConfirmOutcome::Added { first } => {
                let added = Added { authenticator, first, codes, kind: "totp", described_as: "the authenticator app" };
                self.authenticator_added(me, added, ctx).await
            }
        }
    }

    /// Checks a TOTP code against the account's authenticators: the
    /// authenticator that matched and the step to spend, which the caller
    /// writes with the rest of the proof (`ProofWrites`). A code at or
    /// below a step already spent is a replay.
    pub(crate) async fn check_totp(
        &self,
        account: &AccountId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<StepSpend>, FactorError> {
        let now = self.now();
        for auth in self.store.authenticators(account).await?.into_iter().filter(|a| a.kind == "totp") {
            let secret = match self.keys.open(&auth.secret_sealed, authenticator_field(&auth.id)) {
                Ok(s) => Zeroizing::new(s),
                Err(e) => {
                    // A damaged row must not lock the user out of their other factors.
                    tracing::error!(authenticator = %auth.id, error = %e, "authenticator secret cannot be opened");
                    continue;
                }
            };
            let floor = u64::try_from(auth.last_step).ok();
            match verify_totp(&secret, code, now.secs(), TotpParams::DEFAULT, WINDOW, floor) {
                Some(step) => {
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    return Ok(Some(StepSpend { authenticator: auth.id, step }));
                }
                None if verify_totp(&secret, code, now.secs(), TotpParams::DEFAULT, WINDOW, None).is_some() => {
                    self.totp_replayed(account, &auth.id, ctx).await;
                    return Ok(None);
                }
                None => {}
            }
        }
        Ok(None)
    }

    /// A spent code presented again (or spent by a racing request first).
    pub(crate) async fn totp_replayed(&self, account: &AccountId, id: &AuthenticatorId, ctx: &RequestContext) {
        self.audit(AuditEvent::user(AuditKind::TotpReplay, account).factor(id.to_string()).failed(), ctx).await;
        self.notify(account, Notice::totp_replay(), ctx).await;
    }

    pub async fn authenticators(&self, account: &AccountId) -> Result<Vec<AuthenticatorRecord>, FactorError> {
        Ok(self.store.authenticators(account).await?)
    }

    pub async fn remove_authenticator(&self, me: &SignedIn, id: &str, ctx: &RequestContext) -> Result<(), FactorError> {
        let id = AuthenticatorId::from_stored(id);
        self.refuse_removing_last_factor(&me.account.id, &id).await?;
        self.require_recent_auth(me).await?;
        self.delete_factor(&me.account.id, &id, "", ctx).await
    }

    /// What removing any authenticator does once it is allowed: forget the
    /// remembered browsers, delete it (the recovery codes with the last
    /// one), audit (`how` says by what path) and notify.
    pub(crate) async fn delete_factor(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
        how: &str,
        ctx: &RequestContext,
    ) -> Result<(), FactorError> {
        self.forget_all_browsers(account).await?;
        let remaining = self.store.delete_authenticator(account, id).await?.ok_or(FactorError::NotFound)?;
        let last = if remaining == 0 { "last factor removed; two-factor turned off" } else { "" };
        let details = [how, last].into_iter().filter(|d| !d.is_empty()).collect::<Vec<_>>().join("; ");
        self.audit(
            AuditEvent::user(AuditKind::AuthenticatorRemoved, account).factor(id.to_string()).details(details),
            ctx,
        )
        .await;
        self.notify(account, Notice::AuthenticatorRemoved, ctx).await;
        Ok(())
    }

    pub async fn disable_two_factor(&self, me: &SignedIn, ctx: &RequestContext) -> Result<(), FactorError> {
        // Policy refusals come before re-auth (§2.7): no point proving oneself for a "no".
        if let Some(by) = self.two_factor_requirement(&me.account.id).await? {
            return Err(FactorError::RequiredByPolicy { by });
        }
        self.require_recent_auth(me).await?;
        if self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(FactorError::TwoFactorNotEnabled);
        }
        self.store.delete_all_factors(&me.account.id).await?;
        self.forget_all_browsers(&me.account.id).await?;
        // Turning 2FA off ends every other session (§2.11).
        self.store.delete_sessions_of(&me.account.id, Some(&me.session.id)).await?;
        self.sessions_changed(SessionChange::Account(me.account.id.clone())).await;
        self.audit(AuditEvent::user(AuditKind::TwoFactorDisabled, &me.account.id), ctx).await;
        self.notify(&me.account.id, Notice::TwoFactorDisabled, ctx).await;
        Ok(())
    }
}

impl Twostep {
    /// While policy requires 2FA, the account's last factor stays.
    pub(crate) async fn refuse_removing_last_factor(
        &self,
        account: &AccountId,
        removing: &AuthenticatorId,
    ) -> Result<(), FactorError> {
        let others = self.store.authenticators(account).await?.iter().filter(|a| &a.id != removing).count();
        if others > 0 {
            return Ok(());
        }
        if let Some(by) = self.two_factor_requirement(account).await? {
            return Err(FactorError::RequiredByPolicy { by });
        }
        Ok(())
    }

    /// A confirmed factor turns an enrolment session into a full one. That
    /// is a privilege change, so the session gets a new id first (SEC-52,
    /// §2.11): a token planted or seen while it could only enrol must not
    /// become a full session. Returns the new token, or `None` when the
    /// session was already full (turning 2FA on grants it nothing new) or
    /// has meanwhile ended.
    pub(crate) async fn finish_enrollment(&self, me: &SignedIn) -> Result<Option<Token>, crate::error::StoreError> {
        if me.session.kind != crate::sessions::store::SessionKind::Enrollment {
            return Ok(None);
        }
        // Rotate before widening: in between, the new id is still enrolment-only.
        let token = Token::generate(self.rng());
        let rotated = self.store.rotate_session(&me.session.id, &token.hash()).await?;
        self.sessions_changed(SessionChange::Session(me.session.id.clone())).await;
        if !rotated {
            return Ok(None);
        }
        self.store.set_session_kind(&token.hash(), crate::sessions::store::SessionKind::Full).await?;
        self.sessions_changed(SessionChange::Session(token.hash())).await;
        Ok(Some(token))
    }
}
