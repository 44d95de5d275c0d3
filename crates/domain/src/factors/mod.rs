//! Second factors: the one-time-password engine, otpauth URIs and QR codes,
//! recovery codes, and the one entry point that checks any of them.

pub mod otp;
pub mod otpauth;
pub mod recovery_code;

use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::ids::AccountId;
use crate::notice::Notice;
use crate::oob::{CodeRequest, SendError, SentCode, mask_email};
use crate::phone_factor::PHONE_KIND;
use crate::ports::{AccountRecord, Channel, CodePurpose, FactorSummary, OobCodeRecord};
use crate::service::{AuditEvent, Twostep};
use crate::throttle::{LOCK_AT, Scope, Verdict};

/// The counters that can lock a sign-in method (§2.5), read with the
/// factor summary.
fn lock_scopes(account: &AccountId) -> [String; 4] {
    let a = account.clone();
    [Scope::SecondFactor(a.clone()), Scope::Totp(a.clone()), Scope::Phone(a.clone()), Scope::Email(a)].map(|s| s.key())
}

/// A way to prove the second factor, as named in the API (`"totp"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    Sms,
    Voice,
    Email,
    Push,
    RecoveryCode,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Email => "email",
            Self::Push => "push",
            Self::RecoveryCode => "recovery_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "totp" => Self::Totp,
            "sms" => Self::Sms,
            "voice" => Self::Voice,
            "email" => Self::Email,
            "push" => Self::Push,
            "recovery_code" => Self::RecoveryCode,
            _ => return None,
        })
    }
}

/// A second factor proven.
#[derive(Clone, Debug)]
pub struct Proof {
    /// The authenticator or recovery code that was used (for the audit log).
    pub factor_id: String,
    pub recovery_codes_remaining: Option<usize>,
}

impl Twostep {
    /// The methods an account can use at sign-in, strongest first.
    ///
    /// SMS and voice come after the app and push (§2.8: never first); e-mail only as a
    /// fallback beside a real factor (SEC-30), from a verified address, when
    /// the operator allows it.
    pub async fn methods_of(&self, account: &AccountId) -> Result<Vec<Method>, crate::error::StoreError> {
        let summary = self.store.factor_summary(account, &lock_scopes(account)).await?;
        self.methods_from(account, &summary, None).await
    }

    /// `/me`'s two-factor status: the sign-in methods and how many recovery
    /// codes are unused, from one read (factors, codes and lock counters)
    /// for an account whose record the caller already holds.
    pub async fn two_factor_status(
        &self,
        account: &AccountRecord,
    ) -> Result<(Vec<Method>, usize), crate::error::StoreError> {
        let summary = self.store.factor_summary(&account.id, &lock_scopes(&account.id)).await?;
        let methods = self.methods_from(&account.id, &summary, Some(account)).await?;
        Ok((methods, summary.unused_recovery_codes))
    }

    /// `methods_of` from a factor summary holding the `lock_scopes`
    /// counters; `known` spares reading the account again when the caller
    /// has it.
    async fn methods_from(
        &self,
        account: &AccountId,
        summary: &FactorSummary,
        known: Option<&AccountRecord>,
    ) -> Result<Vec<Method>, crate::error::StoreError> {
        if summary.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let has = |kind: &str| summary.kinds.iter().any(|k| k == kind);
        let totp = has("totp");
        let phone = self.settings.phone_enabled && has(PHONE_KIND);
        let email = self.settings.email_fallback
            && match known {
                Some(a) => a.email_verified_at.is_some(),
                None => self.store.account_by_id(account).await?.is_some_and(|a| a.email_verified_at.is_some()),
            };
        // Locked factors leave the list (§2.5); recovery codes never lock.
        let a = account.clone();
        let mut scopes = vec![Scope::SecondFactor(a.clone())];
        if totp {
            scopes.push(Scope::Totp(a.clone()));
        }
        if phone {
            scopes.push(Scope::Phone(a.clone()));
        }
        if email {
            scopes.push(Scope::Email(a));
        }
        let counted = self.counted(&scopes, &summary.counters);
        let locked = |want: fn(&Scope) -> bool| {
            scopes
                .iter()
                .zip(&counted)
                .any(|(s, c)| (want(s) || matches!(s, Scope::SecondFactor(_))) && *c == Verdict::Locked)
        };
        let mut methods = Vec::new();
        if totp && !locked(|s| matches!(s, Scope::Totp(_))) {
            methods.push(Method::Totp);
        }
        // Push before SMS and voice (§2.8); it locks with the code factors
        // (its only counter is `second_factor`).
        if has(crate::push::PUSH_KIND) && !locked(|_| false) {
            methods.push(Method::Push);
        }
        if phone && !locked(|s| matches!(s, Scope::Phone(_))) {
            methods.extend([Method::Sms, Method::Voice]);
        }
        if email && !locked(|s| matches!(s, Scope::Email(_))) {
            methods.push(Method::Email);
        }
        methods.push(Method::RecoveryCode);
        Ok(methods)
    }

    async fn email_method_allowed(&self, account: &AccountId) -> Result<bool, crate::error::StoreError> {
        if !self.settings.email_fallback {
            return Ok(false);
        }
        let verified = self.store.account_by_id(account).await?.is_some_and(|a| a.email_verified_at.is_some());
        Ok(verified && !self.factor_locked(&Scope::Email(account.clone()), account).await?)
    }

    /// Sends a code for `method` (`sms`, `voice`, `email`) bound to
    /// `binding`: the sign-in's login token or, for re-auth, the session.
    pub(crate) async fn send_method_code(
        &self,
        account: &AccountId,
        method: Method,
        purpose: CodePurpose,
        binding: &str,
        ctx: &RequestContext,
    ) -> Result<SentCode, SendError> {
        let lifetime_secs = self.settings.oob_code_secs;
        match method {
            Method::Sms | Method::Voice => {
                let phone = match self.phone_of(account).await? {
                    Some(p) if self.settings.phone_enabled => p.phone,
                    _ => return Err(SendError::MethodUnavailable),
                };
                if self.factor_locked(&Scope::Phone(account.clone()), account).await? {
                    return Err(SendError::FactorLocked);
                }
                let channel = if method == Method::Voice { Channel::Voice } else { Channel::Sms };
                let masked = phone.masked();
                let request = CodeRequest {
                    account,
                    purpose,
                    channel,
                    destination: phone.e164(),
                    calling_code: Some(phone.calling_code()),
                    keep_destination: false,
                    masked,
                    binding,
                    lifetime_secs,
                    link: None,
                };
                self.send_code(request, ctx).await
            }
            Method::Email => {
                // One read of the account serves both the check and the address.
                let has_factor = !self.store.authenticators(account).await?.is_empty();
                let a = match self.store.account_by_id(account).await? {
                    Some(a) if has_factor && self.settings.email_fallback && a.email_verified_at.is_some() => a,
                    _ => return Err(SendError::MethodUnavailable),
                };
                if self.factor_locked(&Scope::Email(account.clone()), account).await? {
                    return Err(SendError::FactorLocked);
                }
                let request = CodeRequest {
                    account,
                    purpose,
                    channel: Channel::Email,
                    destination: a.email.as_str(),
                    calling_code: None,
                    keep_destination: false,
                    masked: mask_email(a.email.as_str()),
                    binding,
                    lifetime_secs,
                    link: None,
                };
                self.send_code(request, ctx).await
            }
            Method::Totp | Method::Push | Method::RecoveryCode => Err(SendError::MethodUnavailable),
        }
    }

    /// Checks a code for `method` under the throttle (§2.5): refused
    /// unevaluated while its counters back off or lock, counted when wrong,
    /// reset when right. A recovery code also unlocks the code factors.
    ///
    /// `sent` names what a sent code must be bound to: its purpose and the
    /// login token's or session's hash.
    pub(crate) async fn prove_second_factor(
        &self,
        account: &AccountId,
        method: Method,
        code: &str,
        sent: (CodePurpose, &str),
        ctx: &RequestContext,
    ) -> Result<Option<Proof>, FactorError> {
        let a = account.clone();
        let scopes = match method {
            Method::RecoveryCode => vec![Scope::Recovery(a)],
            Method::Totp => vec![Scope::SecondFactor(a.clone()), Scope::Totp(a)],
            Method::Sms | Method::Voice => vec![Scope::SecondFactor(a.clone()), Scope::Phone(a)],
            Method::Email => vec![Scope::SecondFactor(a.clone()), Scope::Email(a)],
            Method::Push => vec![Scope::SecondFactor(a)],
        };
        // The attempt is judged and counted in one atomic step before the
        // code is checked, so a burst gets no more guesses than a sequence.
        let admission = self.throttle_admit(&scopes).await?;
        match admission.verdict {
            Verdict::Allow => {}
            Verdict::Locked => return Err(FactorError::FactorLocked),
            Verdict::Wait { retry_after } => {
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
        let proof = self.prove_unguarded(account, method, code, sent, ctx).await?;
        if proof.is_some() {
            // A right code clears what it was counted against (and the
            // failures of a burst racing it, counted before it).
            let mut reset = scopes.clone();
            if method == Method::RecoveryCode {
                let was_locked = self.codes_locked(account).await?;
                let a = account.clone();
                reset.extend([
                    Scope::SecondFactor(a.clone()),
                    Scope::Totp(a.clone()),
                    Scope::Phone(a.clone()),
                    Scope::Email(a),
                ]);
                if was_locked {
                    self.audit(
                        AuditEvent::user(AuditKind::FactorUnlocked, account).details("recovery code sign-in"),
                        ctx,
                    )
                    .await;
                }
            }
            self.throttle_reset(&reset).await?;
            return Ok(proof);
        }
        self.notify_locks(account, &scopes, &admission.counts, ctx).await;
        Ok(None)
    }

    /// Audits and mails the counter that has just reached the lock.
    async fn notify_locks(&self, account: &AccountId, scopes: &[Scope], counts: &[i64], ctx: &RequestContext) {
        for (scope, n) in scopes.iter().zip(counts) {
            if scope.lockable() && *n == LOCK_AT {
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
    ) -> Result<(), crate::error::StoreError> {
        let counts = self.throttle_fail_all(scopes).await?;
        self.notify_locks(account, scopes, &counts, ctx).await;
        Ok(())
    }

    /// Checks a code for `method`. `Ok(None)` is a wrong, replayed or
    /// unavailable code: callers answer all of them alike.
    async fn prove_unguarded(
        &self,
        account: &AccountId,
        method: Method,
        code: &str,
        (purpose, binding): (CodePurpose, &str),
        ctx: &RequestContext,
    ) -> Result<Option<Proof>, FactorError> {
        match method {
            Method::Totp => Ok(self
                .check_totp(account, code, ctx)
                .await?
                .map(|id| Proof { factor_id: id.to_string(), recovery_codes_remaining: None })),
            Method::RecoveryCode => self.use_recovery_code(account, code, ctx).await,
            Method::Sms | Method::Voice => {
                let Some(phone) = self.phone_of(account).await? else { return Ok(None) };
                let key = self.destination_key(phone.phone.e164());
                let sent_to_phone = |c: &OobCodeRecord| c.channel != Channel::Email && c.destination == key;
                let used = self.check_code(account, purpose, binding, sent_to_phone, code).await?;
                Ok(used
                    .map(|_| Proof { factor_id: phone.authenticator.id.to_string(), recovery_codes_remaining: None }))
            }
            Method::Email => {
                if !self.email_method_allowed(account).await? {
                    return Ok(None);
                }
                let by_mail = |c: &OobCodeRecord| c.channel == Channel::Email;
                let used = self.check_code(account, purpose, binding, by_mail, code).await?;
                Ok(used.map(|_| Proof { factor_id: "email".to_owned(), recovery_codes_remaining: None }))
            }
            // The "code" is the approved challenge's id, bound to the login
            // token (sign-in) or the session (re-auth).
            Method::Push => Ok(self.use_push_approval(account, code, binding).await?),
        }
    }
}
