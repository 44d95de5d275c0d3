//! Recovery codes as a sign-in method: the way back in when every other
//! factor is lost or locked. Never locked itself, and a right one clears the
//! other factors' locks.

use async_trait::async_trait;

use crate::abuse::throttle::{FactorCounter, Scope};
use crate::audit::{AuditKind, AuditKindInfo, Category, NOT_YOU_CHANGE, RequestContext};
use crate::error::FactorError;
use crate::factors::{Binding, Factor, Holdings, Method, MethodInfo, Proof, Proven, Proving};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::Twostep;

const RECOVERY_INFO: MethodInfo = MethodInfo {
    in_sentence: "a recovery code",
    name: "recovery_code",
    rank: 60,
    proving: Proving::Typed,
    choice: "Use a recovery code",
    prompt: "Enter one of your recovery codes",
    field_label: "A recovery code",
    send_label: "",
    resend_label: "",
    refused: "That recovery code is not valid or was already used.",
    amr: "otp",
};

pub const RECOVERY_CODE: Method = Method::of(&RECOVERY_INFO);

/// Wrong recovery codes: they back off, never lock (§2.5, SEC-34).
pub const RECOVERY_COUNTER: FactorCounter = FactorCounter { name: "recovery", locks: false };

pub(crate) struct RecoveryFactor;

#[async_trait]
impl Factor for RecoveryFactor {
    fn methods(&self) -> &'static [Method] {
        &[RECOVERY_CODE]
    }

    /// Every account with a factor has them.
    fn held(&self, _have: &Holdings<'_>) -> bool {
        true
    }

    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::Factor(RECOVERY_COUNTER, account.clone())]
    }

    fn unlocks_others(&self) -> bool {
        true
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
        cx.use_recovery_code(account, code, ctx).await
    }
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    pub const RecoveryCodeUsed: AuditKind = AuditKind::of(
        &AuditKindInfo::new("recovery_code_used", Category::SignIns, "A recovery code was used")
            .advice("Each code works once; regenerate them when few are left.")
            .joins_sign_in()
            .note(70, |_| vec!["A recovery code was used".to_owned()]),
    );
    pub const RecoveryCodesRevealed: AuditKind = AuditKind::of(
        &AuditKindInfo::new("recovery_codes_revealed", Category::Changes, "Recovery codes were shown")
            .advice(NOT_YOU_CHANGE)
            .attention(),
    );
    pub const RecoveryCodesRegenerated: AuditKind = AuditKind::of(&AuditKindInfo::new(
        "recovery_codes_regenerated",
        Category::Changes,
        "New recovery codes made; the old ones stopped working",
    ));
}

/// What the factor tells its owner by mail (see `Notice`).
impl Notice {
    /// A recovery code signed in; `remaining` are left.
    pub(crate) fn recovery_code_used(remaining: usize) -> Self {
        Notice::Factor {
            subject: "A recovery code was used to sign in",
            body: format!(
                "A recovery code was used to sign in to your account; {remaining} codes are left. If this was \
                 not you, sign in, regenerate your recovery codes and change your password."
            ),
        }
    }

    /// The codes were shown again.
    pub(crate) fn recovery_codes_revealed() -> Self {
        Notice::Factor {
            subject: "Your recovery codes were viewed",
            body: "Your recovery codes were shown on the Security page. If this was not you, regenerate them and \
             change your password."
                .to_owned(),
        }
    }

    /// A new set replaced the old.
    pub(crate) fn recovery_codes_regenerated() -> Self {
        Notice::Factor {
            subject: "New recovery codes were made",
            body: "A new set of recovery codes was made; the old ones no longer work. If this was not you, change \
             your password."
                .to_owned(),
        }
    }
}
