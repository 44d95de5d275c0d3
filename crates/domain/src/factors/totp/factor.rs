//! The authenticator app as a sign-in method: the strongest of the code
//! factors, offered first.

use async_trait::async_trait;

use crate::abuse::throttle::{FactorCounter, Scope};
use crate::audit::{AuditKind, AuditKindInfo, Category, RequestContext, Sentence};
use crate::error::FactorError;
use crate::factors::{Binding, Factor, Kind, Method, MethodInfo, Proof, Proven, Proving};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::Twostep;

pub const TOTP_KIND: &str = "totp";

const TOTP_INFO: MethodInfo = MethodInfo {
    in_sentence: "an authenticator app",
    name: "totp",
    rank: 10,
    proving: Proving::Typed,
    choice: "Use your authenticator app",
    prompt: "Enter the 6-digit code from your authenticator app",
    field_label: "The 6-digit code from your authenticator app",
    send_label: "",
    resend_label: "",
    refused: "That code didn't work. Check your authenticator app and try the current code.",
    amr: "otp",
};

pub const TOTP: Method = Method::of(&TOTP_INFO);

/// The app's wrong codes, counted apart from the other factors'.
pub const TOTP_COUNTER: FactorCounter = FactorCounter { name: "totp", locks: true };

pub(crate) struct TotpFactor;

#[async_trait]
impl Factor for TotpFactor {
    fn methods(&self) -> &'static [Method] {
        &[TOTP]
    }

    fn kind(&self) -> Option<Kind> {
        Some(Kind { slug: TOTP_KIND, label: "authenticator app", in_sentence: "an authenticator app" })
    }

    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::SecondFactor(account.clone()), Scope::Factor(TOTP_COUNTER, account.clone())]
    }

    async fn verify(
        &self,
        cx: &Twostep,
        account: &AccountId,
        proof: Proof<'_>,
        _bound: Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Proof::Code(code) = proof else { return Ok(None) };
        let Some(spend) = cx.check_totp(account, code, ctx).await? else { return Ok(None) };
        let mut proven = Proven::new(spend.authenticator.to_string());
        proven.writes.step = Some(spend);
        Ok(Some(proven))
    }
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    // A key's set-up is recorded under this kind too, its details saying so.
    pub const TotpEnrollmentStarted: AuditKind =
        AuditKind::of(&AuditKindInfo::reworded("totp_enrollment_started", Category::Changes, |s| {
            Sentence::new(if s.details.starts_with("webauthn") {
                "Started adding a security key or passkey"
            } else {
                "Started setting up an authenticator app"
            })
        }));
    pub const TotpReplay: AuditKind = AuditKind::of(
        &AuditKindInfo::new("totp_replay", Category::SignIns, "An authenticator code was used twice and refused")
            .advice("Codes work once. If you didn't type it twice, someone may have seen it: change your password.")
            .attention()
            .joins_sign_in()
            .note(30, |_| vec!["A code already used was refused".to_owned()]),
    );
}

/// What the factor tells its owner by mail (see `Notice`).
impl Notice {
    /// A code already used was entered again.
    pub(crate) fn totp_replay() -> Self {
        Notice::Factor {
            subject: "A used sign-in code was tried again",
            body: "A code from your authenticator app that had already been used was entered again. Someone may \
             have seen it over your shoulder or through a phishing page; if you did not just sign in twice, \
             change your password."
                .to_owned(),
        }
    }
}
