//! Second factors: the one-time-password engine, otpauth URIs and QR codes,
//! recovery codes, and the one entry point that checks any of them.

pub mod otp;
pub mod otpauth;
pub mod recovery_code;

use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::ids::AccountId;
use crate::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::throttle::{LOCK_AT, Scope, Verdict};

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
    pub async fn methods_of(&self, account: &AccountId) -> Result<Vec<Method>, crate::error::StoreError> {
        let authenticators = self.store.authenticators(account).await?;
        if authenticators.is_empty() {
            return Ok(Vec::new());
        }
        // Locked factors leave the list (§2.5); recovery codes never lock.
        let mut methods = Vec::new();
        if authenticators.iter().any(|a| a.kind == "totp") && !self.codes_locked(account).await? {
            methods.push(Method::Totp);
        }
        methods.push(Method::RecoveryCode);
        Ok(methods)
    }

    /// Checks a code for `method` under the throttle (§2.5): refused
    /// unevaluated while its counters back off or lock, counted when wrong,
    /// reset when right. A recovery code also unlocks the code factors.
    pub(crate) async fn prove_second_factor(
        &self,
        account: &AccountId,
        method: Method,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Proof>, FactorError> {
        let scopes = match method {
            Method::RecoveryCode => vec![Scope::Recovery(account.clone())],
            Method::Totp => vec![Scope::SecondFactor(account.clone()), Scope::Totp(account.clone())],
            Method::Sms | Method::Voice | Method::Email | Method::Push => vec![Scope::SecondFactor(account.clone())],
        };
        let mut wait = None;
        for scope in &scopes {
            match self.throttle_check(scope).await? {
                Verdict::Locked => return Err(FactorError::FactorLocked),
                Verdict::Wait { retry_after } => wait = Some(wait.unwrap_or(0).max(retry_after)),
                Verdict::Allow => {}
            }
        }
        if let Some(retry_after) = wait {
            self.audit(
                AuditEvent::user(AuditKind::Throttled, account).failed().details(format!("method {}", method.as_str())),
                ctx,
            )
            .await;
            return Err(FactorError::Throttled { retry_after });
        }
        let proof = self.prove_unguarded(account, method, code, ctx).await?;
        if proof.is_some() {
            let mut reset = scopes.clone();
            if method == Method::RecoveryCode {
                let was_locked = self.codes_locked(account).await?;
                reset.extend([Scope::SecondFactor(account.clone()), Scope::Totp(account.clone())]);
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
        for scope in &scopes {
            let n = self.throttle_fail(scope).await?;
            if scope.lockable() && n == LOCK_AT {
                self.audit(AuditEvent::user(AuditKind::FactorLocked, account).failed().details(scope.key()), ctx).await;
                self.notify(account, Notice::FactorLocked, ctx).await;
            }
        }
        Ok(None)
    }

    /// Checks a code for `method`. `Ok(None)` is a wrong, replayed or
    /// unavailable code: callers answer all of them alike.
    async fn prove_unguarded(
        &self,
        account: &AccountId,
        method: Method,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Proof>, FactorError> {
        match method {
            Method::Totp => Ok(self
                .check_totp(account, code, ctx)
                .await?
                .map(|id| Proof { factor_id: id.to_string(), recovery_codes_remaining: None })),
            Method::RecoveryCode => self.use_recovery_code(account, code, ctx).await,
            // Delivered codes and push come with later issues; until then no
            // account has them.
            Method::Sms | Method::Voice | Method::Email | Method::Push => Ok(None),
        }
    }
}
