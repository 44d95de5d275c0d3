//! `PasswordGuard`: a password checked under the throttles (§2.5, §2.12),
//! the one way sign-in, re-auth and a password change check one. It holds
//! the throttles, the hasher, the audit log and the notices.

use std::sync::Arc;

use crate::abuse::throttle::{LOCK_AT, MAX_DELAY_SECS, Scope, Verdict, address_key};
use crate::abuse::throttles::Throttles;
use crate::accounts::hasher::Hasher;
use crate::accounts::password::Password;
use crate::accounts::store::AccountRecord;
use crate::audit::{AuditEvent, AuditKind, Auditor, RequestContext};
use crate::error::InternalError;
use crate::meters;
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::signin::machine::PasswordCheck;

pub(crate) struct PasswordGuard {
    pub throttles: Arc<Throttles>,
    pub hasher: Arc<Hasher>,
    pub auditor: Arc<Auditor>,
    pub notices: Arc<Notices>,
}

impl PasswordGuard {
    /// Verifies a password under the throttle: the account's (or unknown
    /// e-mail's) counter and the source address's hourly cap, counted
    /// before the hash is computed in the same atomic step as the decision,
    /// so a burst cannot have more passwords evaluated than one request
    /// after another could. A throttled attempt is refused before any
    /// hashing, alike for unknown e-mails. With `can_succeed` false the
    /// attempt fails whatever the password (SEC-61) at the same cost. Also
    /// says whether the password was right.
    pub async fn check(
        &self,
        account: Option<&AccountRecord>,
        scope: Scope,
        password: Password,
        can_succeed: bool,
        ctx: &RequestContext,
    ) -> Result<(PasswordCheck, bool), InternalError> {
        let address = Scope::Address(address_key(&ctx.ip));
        let admission = self.throttles.admit(&[scope.clone(), address.clone()]).await?;
        let retry_after = match admission.verdict {
            Verdict::Allow => 0,
            Verdict::Wait { retry_after } => retry_after.max(1),
            Verdict::Locked => MAX_DELAY_SECS,
        };
        if retry_after > 0 {
            // Every throttle is audited, for unknown e-mails too (without naming one).
            let event = match account {
                Some(a) => AuditEvent::user(AuditKind::Throttled, &a.id),
                None => AuditEvent::anonymous(AuditKind::Throttled),
            };
            self.auditor.record(event.failed().details("password"), ctx).await;
            return Ok((PasswordCheck::Throttled { retry_after }, false));
        }
        let ok = self.hasher.verify(password, account.map(|a| a.password_hash.clone())).await?;
        if ok && can_succeed {
            self.throttles.reset(std::slice::from_ref(&scope)).await?;
            // The address cap counts failed passwords only.
            self.throttles.refund(&address).await?;
            return Ok((PasswordCheck::Right, true));
        }
        let n = admission.counts.first().copied().unwrap_or_default();
        if n == LOCK_AT {
            meters::lock(scope.kind());
            if let Some(a) = account {
                self.auditor.record(AuditEvent::user(AuditKind::PasswordLocked, &a.id).failed(), ctx).await;
                self.notices.notify(&a.id, Notice::PasswordLocked, ctx).await;
            }
        }
        Ok((PasswordCheck::Wrong, ok))
    }
}
