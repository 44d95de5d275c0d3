//! The phone as a second factor (stories E2, E5, E6; security.md §2.8).
//!
//! A number is verified by a code sent to it, then stored as an
//! authenticator of kind `phone` (the E.164 number sealed like a TOTP
//! seed: it is personal data and the key to SIM-swap attacks), serving the
//! `sms` and `voice` methods. An account has at most one phone: confirming
//! a new number replaces the old one in the same transaction, so the old
//! number stays in force until the new one is proven.

mod factor;
pub mod number;

pub(crate) use factor::PhoneFactor;
pub use factor::{PHONE_COUNTER, SMS, VOICE};

use zeroize::Zeroizing;

use crate::audit::{AuditKind, RequestContext};
use crate::error::{FactorError, InternalError};
use crate::factors::phone::number::{Phone, PhoneError, Use};
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::sent_code::{CodeRequest, SendError, SentCode};
use crate::factors::store::AuthenticatorRecord;
use crate::factors::totp::authenticator_field;
use crate::ids::{AccountId, AuthenticatorId};
use crate::notify::notice::Notice;
use crate::notify::store::Channel;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

pub const PHONE_KIND: &str = "phone";

/// A number as the user gave it.
#[derive(Clone, Copy, Debug)]
pub enum PhoneInput<'a> {
    E164(&'a str),
    National { country: &'a str, number: &'a str },
}

/// A verified phone.
#[derive(Clone, Debug)]
pub struct VerifiedPhone {
    pub authenticator: AuthenticatorRecord,
    pub phone: Phone,
}

/// The result of confirming a number.
#[derive(Debug)]
pub struct PhoneConfirmed {
    pub phone: Phone,
    pub authenticator: AuthenticatorRecord,
    /// The new recovery codes, when the phone turned 2FA on.
    pub recovery_codes: Option<Vec<crate::factors::recovery::code::RecoveryCode>>,
    /// The new session token when confirming ended an enrolment-only
    /// session (SEC-52); the presented one no longer works.
    pub session_token: Option<crate::token::Token>,
}

impl From<PhoneError> for SendError {
    fn from(e: PhoneError) -> Self {
        Self::InvalidPhone(e.to_string())
    }
}

fn reauth(e: FactorError) -> SendError {
    match e {
        FactorError::Internal(i) => SendError::Internal(i),
        _ => SendError::ReauthRequired,
    }
}

impl Twostep {
    /// Parses and vets a number for `channel`: valid for its country, of a
    /// type that can take the channel, in an allowed country.
    pub fn vet_phone(&self, input: PhoneInput<'_>, channel: Channel) -> Result<Phone, PhoneError> {
        let phone = match input {
            PhoneInput::E164(s) => Phone::parse_e164(s)?,
            PhoneInput::National { country, number } => Phone::parse_national(country, number)?,
        };
        phone.check_use(if channel == Channel::Voice { Use::Voice } else { Use::Sms })?;
        phone.allowed(&self.settings.phone_countries)?;
        Ok(phone)
    }

    /// Sends a code to a new number (step one of E2/E6). Needs recent
    /// re-auth: changing the phone is how SIM swappers take accounts.
    pub async fn start_phone_verification(
        &self,
        me: &SignedIn,
        input: PhoneInput<'_>,
        channel: Channel,
        ctx: &RequestContext,
    ) -> Result<SentCode, SendError> {
        if !self.settings.phone_enabled || channel == Channel::Email {
            return Err(SendError::MethodUnavailable);
        }
        let phone = self.vet_phone(input, channel)?;
        self.require_recent_auth(me).await.map_err(reauth)?;
        let sent = self
            .send_code(
                CodeRequest {
                    account: &me.account.id,
                    purpose: CodePurpose::PhoneVerify,
                    channel,
                    destination: phone.e164(),
                    calling_code: Some(phone.calling_code()),
                    keep_destination: true,
                    masked: phone.masked(),
                    binding: me.session.id.as_str(),
                    lifetime_secs: self.settings.oob_code_secs,
                    link: None,
                },
                ctx,
            )
            .await?;
        self.audit(AuditEvent::user(AuditKind::PhoneVerificationStarted, &me.account.id).details(phone.masked()), ctx)
            .await;
        Ok(sent)
    }

    /// Step two: the code proves the number; it becomes the account's phone.
    pub async fn confirm_phone(
        &self,
        me: &SignedIn,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<PhoneConfirmed, FactorError> {
        self.require_recent_auth(me).await?;
        let binding = me.session.id.as_str();
        let Some(sent) = self.check_code(&me.account.id, CodePurpose::PhoneVerify, binding, |_| true, code).await?
        else {
            self.audit(
                AuditEvent::user(AuditKind::PhoneAdded, &me.account.id).failed().details("wrong or expired code"),
                ctx,
            )
            .await;
            return Err(FactorError::InvalidCode);
        };
        let number = sent
            .destination_sealed
            .as_deref()
            .ok_or_else(|| InternalError("verification code without its number".to_owned()))
            .and_then(|sealed| {
                self.keys
                    .open(sealed, crate::factors::sent_code::destination_field(&sent.id))
                    .map_err(|e| InternalError(format!("stored number: {e}")))
            })?;
        let phone = std::str::from_utf8(&number)
            .map_err(|e| InternalError(format!("stored number: {e}")))
            .and_then(|n| Phone::parse_e164(n).map_err(|e| InternalError(format!("stored number: {e}"))))?;
        let now = self.now();
        let id = AuthenticatorId::generate(self.rng());
        let authenticator = AuthenticatorRecord {
            secret_sealed: self.keys.seal(phone.e164().as_bytes(), authenticator_field(&id), self.rng()),
            id,
            account_id: me.account.id.clone(),
            kind: PHONE_KIND.to_owned(),
            name: format!("Phone {}", phone.masked()),
            last_step: 0,
            created_at: now,
            last_used_at: Some(now),
        };
        let (codes, records) = self.new_recovery_set(&me.account.id);
        let outcome = self.store.add_phone(&authenticator, &records).await?;
        self.forget_all_browsers(&me.account.id).await?;
        if outcome.first {
            // The code sent to the phone is the second-factor proof (§2.7).
            self.sessions.record_proofs(&me.session.id, None, Some(now)).await?;
        }
        let session_token = self.finish_enrollment(me).await?;
        let details = match (outcome.first, outcome.replaced) {
            (true, _) => "two-factor turned on",
            (false, true) => "number changed",
            (false, false) => "",
        };
        self.audit(
            AuditEvent::user(AuditKind::PhoneAdded, &me.account.id)
                .factor(authenticator.id.to_string())
                .details(format!("{} {details}", phone.masked()).trim_end().to_owned()),
            ctx,
        )
        .await;
        let notice = if outcome.first {
            Notice::TwoFactorEnabled { method: format!("the phone {}", phone.masked()) }
        } else if outcome.replaced {
            Notice::phone_changed(&phone.masked())
        } else {
            Notice::phone_added(&phone.masked())
        };
        self.notify(&me.account.id, notice, ctx).await;
        Ok(PhoneConfirmed { phone, authenticator, recovery_codes: outcome.first.then_some(codes), session_token })
    }

    /// The account's verified phone, if any.
    pub async fn phone_of(&self, account: &AccountId) -> Result<Option<VerifiedPhone>, InternalError> {
        let found = self.store.authenticators(account).await?.into_iter().find(|a| a.kind == PHONE_KIND);
        let Some(authenticator) = found else { return Ok(None) };
        let e164 =
            Zeroizing::new(self.keys.open(&authenticator.secret_sealed, authenticator_field(&authenticator.id))?);
        let phone = std::str::from_utf8(&e164)
            .ok()
            .and_then(|s| Phone::parse_e164(s).ok())
            .ok_or_else(|| InternalError("stored phone number unreadable".to_owned()))?;
        Ok(Some(VerifiedPhone { authenticator, phone }))
    }

    /// Removes the phone (re-auth). The last factor going turns 2FA off.
    pub async fn remove_phone(&self, me: &SignedIn, ctx: &RequestContext) -> Result<(), FactorError> {
        let Some(p) = self.phone_of(&me.account.id).await? else { return Err(FactorError::NotFound) };
        self.refuse_removing_last_factor(&me.account.id, &p.authenticator.id).await?;
        self.require_recent_auth(me).await?;
        self.forget_all_browsers(&me.account.id).await?;
        let remaining =
            self.store.delete_authenticator(&me.account.id, &p.authenticator.id).await?.ok_or(FactorError::NotFound)?;
        let details = if remaining == 0 { "last factor removed; two-factor turned off" } else { "" };
        self.audit(
            AuditEvent::user(AuditKind::PhoneRemoved, &me.account.id)
                .factor(p.authenticator.id.to_string())
                .details(details),
            ctx,
        )
        .await;
        self.notify(&me.account.id, Notice::phone_removed(), ctx).await;
        Ok(())
    }
}
