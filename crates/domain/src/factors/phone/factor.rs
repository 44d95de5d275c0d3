//! The phone as a sign-in method: a code by text (SMS) or by voice call to
//! the verified number, never offered first (§2.8).

use async_trait::async_trait;

use super::PHONE_KIND;
use crate::abuse::throttle::{FactorCounter, Scope};
use crate::audit::{AuditKind, AuditKindInfo, Category, RequestContext, Sentence};
use crate::error::FactorError;
use crate::factors::sent_code::store::OobCodeRecord;
use crate::factors::sent_code::{SENT_CODE_REFUSED, SendError, SendTo};
use crate::factors::{
    Begin, Binding, Challenge, ChallengeError, Factor, Holdings, Kind, Method, MethodInfo, Proof, Proven, Proving,
};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::notify::store::Channel;
use crate::service::Twostep;

const SMS_INFO: MethodInfo = MethodInfo {
    in_sentence: "a code sent by text message",
    name: "sms",
    rank: 30,
    proving: Proving::Sent,
    choice: "Text me a code",
    prompt: "Enter the 6-digit code we texted you",
    field_label: "The 6-digit code we texted you",
    send_label: "Text me a code",
    resend_label: "Send a new code",
    refused: SENT_CODE_REFUSED,
    amr: "sms",
};

const VOICE_INFO: MethodInfo = MethodInfo {
    in_sentence: "a code read out by phone call",
    name: "voice",
    rank: 40,
    proving: Proving::Sent,
    choice: "Call me",
    prompt: "Enter the 6-digit code we read out to you",
    field_label: "The 6-digit code we read out to you",
    send_label: "Call me",
    // A different name from the first call, so each button says what it does.
    resend_label: "Call me again",
    refused: SENT_CODE_REFUSED,
    amr: "tel",
};

pub const SMS: Method = Method::of(&SMS_INFO);
pub const VOICE: Method = Method::of(&VOICE_INFO);

/// Wrong codes sent to the phone, texts and calls together; while it is
/// locked, no code is sent there.
pub const PHONE_COUNTER: FactorCounter = FactorCounter { name: "phone", locks: true };

pub(crate) struct PhoneFactor;

#[async_trait]
impl Factor for PhoneFactor {
    fn methods(&self) -> &'static [Method] {
        &[SMS, VOICE]
    }

    fn kind(&self) -> Option<Kind> {
        Some(Kind { slug: PHONE_KIND, label: "phone", in_sentence: "a phone" })
    }

    /// Only while the operator has phones on.
    fn held(&self, have: &Holdings<'_>) -> bool {
        have.settings.phone_enabled && have.has(PHONE_KIND)
    }

    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::SecondFactor(account.clone()), Scope::Factor(PHONE_COUNTER, account.clone())]
    }

    async fn begin(&self, cx: &Twostep, method: Method, req: Begin<'_>) -> Result<Challenge, ChallengeError> {
        let phone = match cx.phone_of(req.account).await.map_err(SendError::from)? {
            Some(p) if cx.settings.phone_enabled => p.phone,
            _ => return Err(SendError::MethodUnavailable.into()),
        };
        let channel = if method == VOICE { Channel::Voice } else { Channel::Sms };
        let to =
            SendTo { channel, address: phone.e164(), calling_code: Some(phone.calling_code()), masked: phone.masked() };
        cx.send_challenge_code(&req, Scope::Factor(PHONE_COUNTER, req.account.clone()), to).await
    }

    async fn verify(
        &self,
        cx: &Twostep,
        account: &AccountId,
        proof: Proof<'_>,
        bound: Binding<'_>,
        _ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Proof::Code(code) = proof else { return Ok(None) };
        let Some(phone) = cx.phone_of(account).await? else { return Ok(None) };
        let key = cx.destination_key(phone.phone.e164());
        let sent_to_phone = |c: &OobCodeRecord| c.channel != Channel::Email && c.destination == key;
        let used = cx.check_code(account, bound.purpose, bound.id, sent_to_phone, code).await?;
        Ok(used.map(|_| Proven::new(phone.authenticator.id.to_string())))
    }

    async fn destination(&self, cx: &Twostep, account: &AccountId) -> Result<Option<String>, FactorError> {
        Ok(cx.phone_of(account).await?.map(|p| p.phone.masked()))
    }
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    pub const PhoneVerificationStarted: AuditKind = AuditKind::of(&AuditKindInfo::new(
        "phone_verification_started",
        Category::Changes,
        "Started adding a phone number",
    ));
    pub const PhoneAdded: AuditKind = AuditKind::of(&AuditKindInfo::reworded("phone_added", Category::Changes, |s| {
        if s.success {
            Sentence::new("Phone number added")
        } else {
            Sentence::new("Adding a phone number failed: wrong or expired code")
                .advice("Ask for a new code and type it within 10 minutes.")
        }
    }));
    pub const PhoneRemoved: AuditKind =
        AuditKind::of(&AuditKindInfo::new("phone_removed", Category::Changes, "Phone number removed"));
}

/// What the factor tells its owner by mail (see `Notice`).
impl Notice {
    /// A number where there was none (2FA already on by another factor).
    pub(crate) fn phone_added(masked: &str) -> Self {
        Notice::Factor {
            subject: "A phone number was added to your account",
            body: format!(
                "The phone number {masked} was added to your account; codes by text message and voice call go \
                 there. If this was not you, someone may be taking over your account: sign in, remove the number \
                 and change your password."
            ),
        }
    }

    /// The number was replaced.
    pub(crate) fn phone_changed(masked: &str) -> Self {
        Notice::Factor {
            subject: "The phone number of your account was changed",
            body: format!(
                "Your account's phone number is now {masked}; codes by text message and voice call go there. If \
                 this was not you, someone may be taking over your account: sign in, remove the number and \
                 change your password."
            ),
        }
    }

    /// The number was removed.
    pub(crate) fn phone_removed() -> Self {
        Notice::Factor {
            subject: "The phone number was removed from your account",
            body: "The phone number was removed from your account: codes by text message and voice call no longer \
             work. If this was not you, sign in and change your password."
                .to_owned(),
        }
    }
}
