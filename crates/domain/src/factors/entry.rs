//! The one entry point to every factor: which methods an account may use,
//! beginning a challenge, and checking a proof under the throttle (§2.5).
//! Each step asks the registry; no factor is named here.

use crate::abuse::throttle::{LOCK_AT, Scope, TokenTried, TokenTry, Verdict};
use crate::accounts::store::AccountRecord;
use crate::audit::{AuditKind, Auditor, RequestContext};
use crate::error::{FactorError, StoreError};
use crate::factors::registry;
use crate::factors::sent_code::SendError;
use crate::factors::store::{FactorSummary, ProofWrites};
use crate::factors::{Begin, Binding, Challenge, ChallengeError, Holdings, Method, Proof};
use crate::ids::AccountId;
use crate::meters::{self, CheckResult};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

/// A second factor proven.
#[derive(Clone, Debug)]
pub struct Proven {
    /// The authenticator or recovery code that was used (for the audit log).
    pub factor_id: String,
    pub recovery_codes_remaining: Option<usize>,
    /// What accepting it still writes (see `check_second_factor`).
    pub writes: ProofWrites,
}

/// A login token's try of a second factor (sign-in's second step).
#[derive(Debug)]
pub enum LoginTry {
    /// The token is expired, spent or worn out: nothing was checked.
    Gone,
    /// Checked and counted on the token: its tries with this one, and the
    /// proof when right.
    Checked { proven: Option<Proven>, failures: i64 },
}

impl From<(Option<Proven>, TokenTried)> for LoginTry {
    fn from((proven, tried): (Option<Proven>, TokenTried)) -> Self {
        match tried {
            TokenTried::Counted { failures } => LoginTry::Checked { proven, failures },
            // Admitted yet not counted cannot happen: fail closed.
            TokenTried::Gone | TokenTried::NotCounted => LoginTry::Gone,
        }
    }
}

impl Proven {
    pub fn new(factor_id: impl Into<String>) -> Self {
        Proven { factor_id: factor_id.into(), recovery_codes_remaining: None, writes: ProofWrites::default() }
    }
}

impl Twostep {
    /// The methods an account can use at sign-in, strongest first.
    ///
    /// SMS and voice come after the app and push (§2.8: never first); e-mail only as a
    /// fallback beside a real factor (SEC-30), from a verified address, when
    /// the operator allows it. Locked methods leave the list (§2.5).
    pub async fn methods_of(&self, account: &AccountId) -> Result<Vec<Method>, StoreError> {
        let summary = self.store.factor_summary(account, &lock_keys(account)).await?;
        self.methods_from(account, &summary, None).await
    }

    /// Chooses the method asked first at sign-in (`None`: strongest first).
    /// Only a method the account can use now may be chosen.
    pub async fn set_preferred_method(&self, me: &SignedIn, method: Option<Method>) -> Result<(), FactorError> {
        if let Some(m) = method
            && !self.methods_of(&me.account.id).await?.contains(&m)
        {
            return Err(FactorError::UnknownMethod);
        }
        self.store.set_preferred_method(&me.account.id, method.map(Method::as_str), self.now()).await?;
        Ok(())
    }

    /// `methods_of` and the method the account chose to be asked first (if
    /// it still holds it), from the same read.
    pub async fn methods_and_preference(
        &self,
        account: &AccountId,
    ) -> Result<(Vec<Method>, Option<Method>), StoreError> {
        let summary = self.store.factor_summary(account, &lock_keys(account)).await?;
        let methods = self.methods_from(account, &summary, None).await?;
        let preferred = summary.preferred.as_deref().and_then(Method::parse).filter(|m| methods.contains(m));
        Ok((methods, preferred))
    }

    /// `/me`'s two-factor status: the sign-in methods and how many recovery
    /// codes are unused, from one read (factors, codes and lock counters)
    /// for an account whose record the caller already holds.
    pub async fn two_factor_status(&self, account: &AccountRecord) -> Result<(Vec<Method>, usize), StoreError> {
        let summary = self.store.factor_summary(&account.id, &lock_keys(&account.id)).await?;
        let methods = self.methods_from(&account.id, &summary, Some(account)).await?;
        Ok((methods, summary.unused_recovery_codes))
    }

    /// `methods_of` from a factor summary holding the lock counters; `known`
    /// spares reading the account again when the caller has it.
    async fn methods_from(
        &self,
        account: &AccountId,
        summary: &FactorSummary,
        known: Option<&AccountRecord>,
    ) -> Result<Vec<Method>, StoreError> {
        if summary.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let email_verified = if registry::standard().iter().any(super::Factor::needs_email_verified) {
            match known {
                Some(a) => a.email_verified_at.is_some(),
                None => self.store.account_by_id(account).await?.is_some_and(|a| a.email_verified_at.is_some()),
            }
        } else {
            false
        };
        let have = Holdings { kinds: &summary.kinds, email_verified, settings: &self.settings };
        let mut methods = Vec::new();
        for factor in registry::standard().iter().filter(|f| f.held(&have)) {
            let scopes: Vec<Scope> = factor.scopes(account).into_iter().filter(Scope::lockable).collect();
            let locked = self.counted(&scopes, &summary.counters).contains(&Verdict::Locked);
            if !locked {
                methods.extend_from_slice(factor.methods());
            }
        }
        // Strongest first, the account's chosen method (when it still
        // holds it) ahead of all.
        let preferred = summary.preferred.as_deref().and_then(Method::parse);
        methods.sort_by_key(|m| (Some(*m) != preferred, m.info().rank));
        Ok(methods)
    }

    /// Begins what `method` needs before a proof: sends a code, or raises a
    /// push, bound to `bound` (a login token's or session's hash).
    pub(crate) async fn begin_challenge(
        &self,
        account: &AccountId,
        method: Method,
        bound: Binding<'_>,
        place: Option<String>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        let Some(factor) = registry::standard().factor(method) else {
            return Err(SendError::MethodUnavailable.into());
        };
        factor.begin(self, method, Begin { account, bound, place, ctx }).await
    }

    /// Where a sent code for `method` would go, masked, for a form to say
    /// before sending.
    pub async fn method_destination(&self, account: &AccountId, method: Method) -> Option<String> {
        let factor = registry::standard().factor(method)?;
        factor.destination(self, account).await.ok().flatten()
    }

    /// Checks a proof for `method` under the throttle (§2.5) and writes
    /// what a right one spends (`check_second_factor`) in one transaction.
    /// A proof whose step another request spent first is wrong.
    pub(crate) async fn prove_second_factor(
        &self,
        account: &AccountId,
        method: Method,
        proof: Proof<'_>,
        bound: Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Some(proven) = self.check_second_factor(account, method, proof, bound, ctx).await? else {
            return Ok(None);
        };
        if !self.store.commit_proof(&proven.writes, self.now()).await? {
            self.proof_spent_first(account, &proven.writes, ctx).await;
            return Ok(None);
        }
        proven.writes.audit.iter().for_each(Auditor::announce);
        Ok(Some(proven))
    }

    /// Checks a proof for `method` under the throttle (§2.5): refused
    /// unevaluated while its counters back off or lock, counted when wrong.
    /// A right proof comes back with what it still has to write
    /// (`Proven::writes`: its replay guard, the counters it clears), for the
    /// caller to commit with its own writes, or not at all.
    pub(crate) async fn check_second_factor(
        &self,
        account: &AccountId,
        method: Method,
        proof: Proof<'_>,
        bound: Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        Ok(self.check_factor(account, method, proof, bound, None, ctx).await?.0)
    }

    /// `check_second_factor`, counting a login token's try (`token`) in the
    /// same atomic step as the factor's throttles: one write admits it, and
    /// a try they refuse is not one of the token's.
    pub(crate) async fn check_factor(
        &self,
        account: &AccountId,
        method: Method,
        proof: Proof<'_>,
        bound: Binding<'_>,
        token: Option<TokenTry<'_>>,
        ctx: &RequestContext,
    ) -> Result<(Option<Proven>, TokenTried), FactorError> {
        let Some(factor) = registry::standard().factor(method) else {
            // No such factor is still one of the token's tries.
            return Ok((None, self.throttle_admit_with(&[], token).await?.token));
        };
        let scopes = factor.scopes(account);
        // The attempt is judged and counted in one atomic step before the
        // proof is checked, so a burst gets no more guesses than a sequence.
        let admission = self.throttle_admit_with(&scopes, token).await?;
        match admission.verdict {
            Verdict::Allow => {}
            Verdict::Locked => {
                meters::second_factor_check(method, CheckResult::Locked);
                return Err(FactorError::FactorLocked);
            }
            Verdict::Wait { retry_after } => {
                meters::second_factor_check(method, CheckResult::Throttled);
                self.audit(
                    AuditEvent::user(AuditKind::Throttled, account)
                        .failed()
                        .details(format!("method {}", method.as_str())),
                    ctx,
                )
                .await;
                return Err(FactorError::Throttled { retry_after: retry_after.max(1) });
            }
        }
        if admission.token == TokenTried::Gone {
            return Ok((None, TokenTried::Gone));
        }
        let proven = factor.verify(self, account, proof, bound, ctx).await?;
        let checked = if proven.is_some() { CheckResult::Success } else { CheckResult::BadCode };
        meters::second_factor_check(method, checked);
        let Some(mut proven) = proven else {
            self.notify_locks(account, &scopes, &admission.counts, ctx).await;
            return Ok((None, admission.token));
        };
        // A right proof clears what it was counted against (and the
        // failures of a burst racing it, counted before it).
        proven.writes.reset.extend(scopes.iter().map(Scope::key));
        if factor.unlocks_others() {
            let locks = registry::standard().lock_scopes(account);
            let was_locked = self.any_locked(&locks).await?;
            proven.writes.reset.extend(locks.iter().map(Scope::key));
            if was_locked {
                let unlocked = AuditEvent::user(AuditKind::FactorUnlocked, account).details("recovery code sign-in");
                proven.writes.audit.push(self.auditor.entry(unlocked, ctx));
            }
        }
        Ok((Some(proven), admission.token))
    }

    /// A right proof refused at commit because a racing request spent its
    /// step first: audited and told as the replay it is.
    pub(crate) async fn proof_spent_first(&self, account: &AccountId, writes: &ProofWrites, ctx: &RequestContext) {
        if let Some(spend) = &writes.step {
            self.totp_replayed(account, &spend.authenticator, ctx).await;
        }
    }

    /// Audits and mails the counter that has just reached the lock.
    async fn notify_locks(&self, account: &AccountId, scopes: &[Scope], counts: &[i64], ctx: &RequestContext) {
        for (scope, n) in scopes.iter().zip(counts) {
            if scope.lockable() && *n == LOCK_AT {
                meters::lock(scope.kind());
                self.audit(AuditEvent::user(AuditKind::FactorLocked, account).failed().details(scope.key()), ctx).await;
                self.notify(account, Notice::FactorLocked, ctx).await;
            }
        }
    }

    /// A wrong code (or push number) against `scopes` (§2.5): every
    /// counter in one statement; the one that reaches the lock is audited
    /// and mailed.
    pub(crate) async fn count_wrong_code(
        &self,
        account: &AccountId,
        scopes: &[Scope],
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        let counts = self.throttle_fail_all(scopes).await?;
        self.notify_locks(account, scopes, &counts, ctx).await;
        Ok(())
    }
}

/// The counters the factor summary reads so locked methods leave the list.
fn lock_keys(account: &AccountId) -> Vec<String> {
    registry::standard().lock_scopes(account).iter().map(Scope::key).collect()
}
