//! Second factors: the one-time-password engine, otpauth URIs and QR codes,
//! recovery codes, and the one entry point that checks any of them.

pub mod otp;
pub mod otpauth;
pub mod recovery_code;

use crate::audit::RequestContext;
use crate::error::FactorError;
use crate::ids::AccountId;
use crate::service::Twostep;

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
    pub async fn methods_of(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Method>, crate::error::StoreError> {
        let authenticators = self.store.authenticators(account).await?;
        let mut methods = Vec::new();
        if authenticators.iter().any(|a| a.kind == "totp") {
            methods.push(Method::Totp);
        }
        if !methods.is_empty() {
            methods.push(Method::RecoveryCode);
        }
        Ok(methods)
    }

    /// Checks a code for `method`. `Ok(None)` is a wrong, replayed or
    /// unavailable code: callers answer all of them alike.
    pub(crate) async fn prove_second_factor(
        &self,
        account: &AccountId,
        method: Method,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Proof>, FactorError> {
        match method {
            Method::Totp => Ok(self.check_totp(account, code, ctx).await?.map(|id| Proof {
                factor_id: id.to_string(),
                recovery_codes_remaining: None,
            })),
            Method::RecoveryCode => self.use_recovery_code(account, code, ctx).await,
            // Delivered codes and push come with later issues; until then no
            // account has them.
            Method::Sms | Method::Voice | Method::Email | Method::Push => Ok(None),
        }
    }
}
