//! Re-authentication ("sudo mode", `security.md` §2.7).
//!
//! A sensitive change needs the password and, when 2FA is on, a second
//! factor, each proven within the last 10 minutes — at sign-in or through
//! `reauth`. A 2FA-less account enrolling its first factor needs only the
//! password; the factor's confirmation then counts as the second proof.

use crate::abuse::throttle::Scope;
use crate::accounts::password::Password;
use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::{Binding, Challenge, ChallengeError, Method, Proof};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::signin::machine::PasswordCheck;
use crate::time::Timestamp;

/// The proofs offered in one re-auth call.
pub struct ReauthProofs<'a> {
    pub password: Option<&'a str>,
    pub second_factor: Option<(Method, Proof<'a>)>,
}

impl Twostep {
    fn is_recent(&self, at: Option<Timestamp>) -> bool {
        at.is_some_and(|t| self.now().secs() - t.secs() < self.settings.reauth_window_secs)
    }

    pub(crate) async fn require_recent_auth(&self, me: &SignedIn) -> Result<(), FactorError> {
        let has_two_factor = !self.store.authenticators(&me.account.id).await?.is_empty();
        let password_ok = self.is_recent(me.session.password_at);
        let second_ok = !has_two_factor || self.is_recent(me.session.second_factor_at);
        if password_ok && second_ok { Ok(()) } else { Err(FactorError::ReauthRequired) }
    }

    /// What a re-auth form must still ask for: (password, second factor).
    pub async fn reauth_needs(&self, me: &SignedIn) -> Result<(bool, bool), FactorError> {
        let has_two_factor = !self.store.authenticators(&me.account.id).await?.is_empty();
        Ok((!self.is_recent(me.session.password_at), has_two_factor && !self.is_recent(me.session.second_factor_at)))
    }

    /// Begins what `method` needs to prove the second factor for re-auth (a
    /// code sent, or a push), bound to this session; then `reauth`.
    pub async fn reauth_challenge(
        &self,
        me: &SignedIn,
        method: Method,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        let bound = Binding { purpose: CodePurpose::Reauth, id: me.session.id.as_str() };
        self.begin_challenge(&me.account.id, method, bound, None, ctx).await
    }

    /// Checks each proof given and records it on the session. All given
    /// proofs must hold; none is recorded otherwise.
    pub async fn reauth(
        &self,
        me: &SignedIn,
        proofs: ReauthProofs<'_>,
        ctx: &RequestContext,
    ) -> Result<(), FactorError> {
        if proofs.password.is_none() && proofs.second_factor.is_none() {
            return Err(FactorError::NothingToProve);
        }
        let now = self.now();
        let mut password_at = None;
        if let Some(pw) = proofs.password {
            let check = match Password::for_sign_in(pw) {
                Some(p) => {
                    let scope = Scope::Password(me.account.id.clone());
                    self.guarded_password(Some(&me.account), scope, p, ctx).await?
                }
                None => PasswordCheck::Wrong,
            };
            match check {
                PasswordCheck::Right => password_at = Some(now),
                PasswordCheck::Throttled { retry_after } => return Err(FactorError::Throttled { retry_after }),
                PasswordCheck::Wrong => {
                    self.audit(AuditEvent::user(AuditKind::Reauth, &me.account.id).failed().details("password"), ctx)
                        .await;
                    return Err(FactorError::InvalidPassword);
                }
            }
        }
        let mut second_at = None;
        if let Some((method, proof)) = proofs.second_factor {
            let bound = Binding { purpose: CodePurpose::Reauth, id: me.session.id.as_str() };
            let Some(proof) = self.prove_second_factor(&me.account.id, method, proof, bound, ctx).await? else {
                let d = format!("method {}", method.as_str());
                self.audit(AuditEvent::user(AuditKind::Reauth, &me.account.id).failed().details(d), ctx).await;
                return Err(FactorError::InvalidCode);
            };
            second_at = Some(now);
            let d = format!("method {}", method.as_str());
            self.audit(AuditEvent::user(AuditKind::Reauth, &me.account.id).factor(proof.factor_id).details(d), ctx)
                .await;
        } else {
            self.audit(AuditEvent::user(AuditKind::Reauth, &me.account.id).details("password"), ctx).await;
        }
        self.sessions.record_proofs(&me.session.id, password_at, second_at).await?;
        Ok(())
    }
}
