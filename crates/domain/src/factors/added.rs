//! What follows a new authenticator, the same for every factor that adds
//! one: remembered browsers forgotten, the first factor's proof recorded
//! on the session, an enrolment-only session ended, the audit row and the
//! owner's mail.

use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::factors::recovery::code::RecoveryCode;
use crate::factors::store::AuthenticatorRecord;
use crate::factors::totp::Confirmed;
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

/// A stored authenticator, as its factor describes it.
pub(crate) struct Added {
    pub authenticator: AuthenticatorRecord,
    /// It is the account's first: two-factor turned on with it.
    pub first: bool,
    /// The recovery codes stored with it, shown only when it is the first.
    pub codes: Vec<RecoveryCode>,
    /// The factor's name in the audit details (`"totp"`).
    pub kind: &'static str,
    /// How the mail names it: "the authenticator app".
    pub described_as: &'static str,
}

impl Twostep {
    pub(crate) async fn authenticator_added(
        &self,
        me: &SignedIn,
        added: Added,
        ctx: &RequestContext,
    ) -> Result<Confirmed, FactorError> {
        let Added { authenticator, first, codes, kind, described_as } = added;
        self.forget_all_browsers(&me.account.id).await?;
        if first {
            // The proof that added it (a code, a key's signature) is the
            // second-factor proof of this session (§2.7).
            self.sessions.record_proofs(&me.session.id, None, Some(self.now())).await?;
        }
        let session_token = self.finish_enrollment(me).await?;
        let details = if first { format!("{kind}; two-factor turned on") } else { kind.to_owned() };
        self.audit(
            AuditEvent::user(AuditKind::AuthenticatorAdded, &me.account.id)
                .factor(authenticator.id.to_string())
                .details(details),
            ctx,
        )
        .await;
        let name = authenticator.name.clone();
        let notice = if first {
            Notice::TwoFactorEnabled { method: format!("{described_as} \"{name}\"") }
        } else {
            Notice::AuthenticatorAdded { name }
        };
        self.notify(&me.account.id, notice, ctx).await;
        Ok(Confirmed { authenticator, recovery_codes: first.then_some(codes), session_token })
    }
}
