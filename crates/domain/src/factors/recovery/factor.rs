//! Recovery codes as a sign-in method: the way back in when every other
//! factor is lost or locked. Never locked itself, and a right one clears the
//! other factors' locks.

use async_trait::async_trait;

use crate::abuse::throttle::Scope;
use crate::audit::{AuditKind, AuditKindInfo, Category, NOT_YOU_CHANGE, RequestContext};
use crate::error::FactorError;
use crate::factors::{Binding, Factor, Holdings, Method, MethodInfo, Proof, Proven, Proving};
use crate::ids::AccountId;
use crate::service::Twostep;

const RECOVERY_INFO: MethodInfo = MethodInfo {
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
        vec![Scope::Recovery(account.clone())]
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
