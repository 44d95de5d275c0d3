//! The sign-in state machine: password, then (when the account has 2FA) a
//! second factor against a short-lived login token (§2.6).
//!
//! Unknown e-mail, wrong password and disabled account are one error after
//! the same Argon2id work (§2.12). The login token is stored hashed, lives 5
//! minutes, is good only for the second step, dies after 5 wrong codes, and
//! is consumed atomically on success, so one password step yields at most
//! one session.

use crate::abuse::throttle::Scope;
use crate::accounts::password::Password;
use crate::accounts::store::AccountRecord;
use crate::audit::{AuditKind, RequestContext};
use crate::error::InternalError;
use crate::error::{LoginError, SessionError};
use crate::factors::{Challenge, ChallengeError, Method, Proof};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::signin::machine::PasswordCheck;
use crate::token::Token;

/// What the password step leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    Authenticated {
        session: Token,
        account: AccountId,
    },
    SecondFactorRequired {
        login_token: Token,
        methods: Vec<Method>,
    },
    /// Policy requires 2FA the account lacks: a session that may only set
    /// up a factor (and read the profile) until one is confirmed.
    EnrollmentRequired {
        session: Token,
        account: AccountId,
    },
}

/// A completed second step.
#[derive(Debug)]
pub struct Verified {
    pub session: Token,
    pub account: AccountId,
    /// Set when a recovery code was used: how many are left.
    pub recovery_codes_remaining: Option<usize>,
}

impl From<SessionError> for LoginError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Unauthenticated | SessionError::IpNotAllowed => Self::InvalidCredentials,
            SessionError::Internal(i) => Self::Internal(i),
        }
    }
}

impl Twostep {
    /// The password step (see `SignIn::login`).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        remembered: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, LoginError> {
        self.signin.login(self, email, password, remembered, ctx).await
    }

    /// Verifies a password under the throttle (see `PasswordGuard::check`).
    pub(crate) async fn guarded_password(
        &self,
        account: Option<&AccountRecord>,
        scope: Scope,
        password: Password,
        ctx: &RequestContext,
    ) -> Result<PasswordCheck, InternalError> {
        Ok(self.guard.check(account, scope, password, true, ctx).await?.0)
    }

    /// The second step's methods for a live login token (`None`: spent or
    /// expired); see `SignIn::methods`.
    pub async fn login_methods(&self, login_token: &str) -> Result<Option<Vec<Method>>, InternalError> {
        Ok(self.signin.methods(self, login_token).await?)
    }

    /// Begins the second step's challenge for `method` (`POST
    /// /login/challenge`). `place` is the sign-in's approximate place when
    /// the operator's proxy tells it (a GeoIP header).
    pub async fn login_challenge(
        &self,
        login_token: &str,
        method: Method,
        place: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        self.signin.challenge(self, login_token, method, place, ctx).await
    }

    /// The second step (see `SignIn::verify`).
    pub async fn verify_login(
        &self,
        login_token: &str,
        method: Method,
        proof: Proof<'_>,
        ctx: &RequestContext,
    ) -> Result<Verified, LoginError> {
        self.signin.verify(self, login_token, method, proof, ctx).await
    }
}

impl Twostep {
    /// Before the operator's mandate is in force, mails an account without
    /// 2FA that it is coming: once per account, recorded in the audit log.
    /// Nothing is recorded for an unverified address (no notice goes
    /// there), so the notice still comes once the address is verified.
    pub(crate) async fn notify_mandate_once(&self, account: &AccountRecord, ctx: &RequestContext) {
        let crate::policy::Mandate::Upcoming { from } = self.operator_mandate() else { return };
        if account.email_verified_at.is_none() || matches!(self.mandate_met_by_allowlist(&account.id).await, Ok(true)) {
            return;
        }
        let filter = crate::audit::AuditFilter {
            account_id: Some(account.id.clone()),
            kind: Some(AuditKind::MandateNotice.as_str().to_owned()),
            limit: 1,
            ..Default::default()
        };
        match self.store.entries(&filter).await {
            Ok(earlier) if earlier.is_empty() => {}
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "mandate notice: audit log not readable");
                return;
            }
        }
        self.audit(AuditEvent::user(AuditKind::MandateNotice, &account.id).details(from.rfc3339()), ctx).await;
        self.notify(&account.id, Notice::TwoFactorMandate { from }, ctx).await;
    }
}
