//! E-mail as a fallback second factor (SEC-30): a code sent to the verified
//! address, offered only beside a real factor and when the operator allows it.

use async_trait::async_trait;

use crate::abuse::throttle::{FactorCounter, Scope};
use crate::audit::RequestContext;
use crate::error::{FactorError, StoreError};
use crate::factors::sent_code::store::OobCodeRecord;
use crate::factors::sent_code::{SENT_CODE_REFUSED, SendError, SendTo, mask_email};
use crate::factors::{
    Begin, Binding, Challenge, ChallengeError, Factor, Holdings, Method, MethodInfo, Proof, Proven, Proving,
};
use crate::ids::AccountId;
use crate::notify::store::Channel;
use crate::service::Twostep;

const EMAIL_INFO: MethodInfo = MethodInfo {
    in_sentence: "a code sent by e-mail",
    name: "email",
    rank: 50,
    proving: Proving::Sent,
    choice: "E-mail me a code",
    prompt: "Enter the 6-digit code we e-mailed you",
    field_label: "The 6-digit code we e-mailed you",
    send_label: "E-mail me a code",
    resend_label: "Send a new code",
    refused: SENT_CODE_REFUSED,
    amr: "otp",
};

pub const EMAIL: Method = Method::of(&EMAIL_INFO);

/// Wrong codes sent to the address; while it is locked, no code is sent there.
pub const EMAIL_COUNTER: FactorCounter = FactorCounter { name: "email", locks: true };

pub(crate) struct EmailFactor;

impl EmailFactor {
    /// The account's verified address, when the operator allows the
    /// fallback at all.
    async fn verified_address(cx: &Twostep, account: &AccountId) -> Result<Option<String>, StoreError> {
        if !cx.settings.email_fallback {
            return Ok(None);
        }
        let account = cx.store.account_by_id(account).await?;
        Ok(account.filter(|a| a.email_verified_at.is_some()).map(|a| a.email.as_str().to_owned()))
    }
}

#[async_trait]
impl Factor for EmailFactor {
    fn methods(&self) -> &'static [Method] {
        &[EMAIL]
    }

    fn held(&self, have: &Holdings<'_>) -> bool {
        have.settings.email_fallback && have.email_verified
    }

    fn needs_email_verified(&self) -> bool {
        true
    }

    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::SecondFactor(account.clone()), Scope::Factor(EMAIL_COUNTER, account.clone())]
    }

    async fn begin(&self, cx: &Twostep, _method: Method, req: Begin<'_>) -> Result<Challenge, ChallengeError> {
        // Only beside a real factor (SEC-30).
        let has_factor = !cx.store.authenticators(req.account).await.map_err(SendError::from)?.is_empty();
        let address = Self::verified_address(cx, req.account).await.map_err(SendError::from)?;
        let Some(address) = address.filter(|_| has_factor) else {
            return Err(SendError::MethodUnavailable.into());
        };
        let to =
            SendTo { channel: Channel::Email, address: &address, calling_code: None, masked: mask_email(&address) };
        cx.send_challenge_code(&req, Scope::Factor(EMAIL_COUNTER, req.account.clone()), to).await
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
        // A locked e-mail factor never gets here: `prove_second_factor`
        // refuses it while judging the attempt against `scopes`.
        if Self::verified_address(cx, account).await?.is_none() {
            return Ok(None);
        }
        let by_mail = |c: &OobCodeRecord| c.channel == Channel::Email;
        let used = cx.check_code(account, bound.purpose, bound.id, by_mail, code).await?;
        Ok(used.map(|_| Proven::new("email")))
    }

    async fn destination(&self, cx: &Twostep, account: &AccountId) -> Result<Option<String>, FactorError> {
        Ok(cx.store.account_by_id(account).await?.map(|a| mask_email(a.email.as_str())))
    }
}
