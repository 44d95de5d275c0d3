//! The sign-in state machine: password, then (when the account has 2FA) a
//! second factor against a short-lived login token (§2.6).
//!
//! Unknown e-mail, wrong password and disabled account are one error after
//! the same Argon2id work (§2.12). The login token is stored hashed, lives 5
//! minutes, is good only for the second step, dies after 5 wrong codes, and
//! is consumed atomically on success, so one password step yields at most
//! one session.

use crate::abuse::throttle::{LOCK_AT, MAX_DELAY_SECS, Scope, Verdict, address_key};
use crate::accounts::email::Email;
use crate::accounts::password::Password;
use crate::accounts::store::AccountRecord;
use crate::audit::{AuditKind, RequestContext};
use crate::error::InternalError;
use crate::error::{LoginError, SessionError};
use crate::factors::sent_code::SendError;
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::{Binding, Challenge, ChallengeError, Method, Proof};
use crate::ids::AccountId;
use crate::meters::{self, SignInMethod, SignInResult};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::store::{LoginTokenRecord, SessionKind};
use crate::signin::machine::{self, AfterPassword, PasswordCheck, PasswordVerdict};
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
    /// `remembered` is the browser's remember-me token, if it has one: a live
    /// one for this account skips the second factor (never the password).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        remembered: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, LoginError> {
        let parsed = Email::parse(email).ok();
        let Some(password) = Password::for_sign_in(password) else {
            // Longer than any stored password: refuse without hashing.
            meters::sign_in(SignInResult::BadPassword, SignInMethod::Password);
            return Err(LoginError::InvalidCredentials);
        };
        let account = match &parsed {
            Some(e) => self.store.account_by_email(e).await?,
            None => None,
        };
        let scope = match &account {
            Some(a) => Scope::Password(a.id.clone()),
            None => self.unknown_email_scope(parsed.as_ref(), email),
        };
        // SEC-61: from outside the account's IP allow-list the password is
        // checked all the same but cannot succeed (see `allowlist`).
        let allowed = self.sign_in_allowed(account.as_ref(), &ctx.ip).await?;
        let check = if allowed {
            self.guarded_password(account.as_ref(), scope, password, ctx).await?
        } else {
            self.password_from_outside(account.as_ref(), scope, password, ctx).await?
        };
        let account = match (machine::judge_password(check, account.as_ref(), allowed), account) {
            (PasswordVerdict::Passed, Some(a)) => a,
            (PasswordVerdict::Throttled { retry_after }, _) => {
                meters::sign_in(SignInResult::Throttled, SignInMethod::Password);
                return Err(LoginError::Throttled { retry_after });
            }
            (verdict, a) => {
                let result = if allowed { SignInResult::BadPassword } else { SignInResult::IpNotAllowed };
                meters::sign_in(result, SignInMethod::Password);
                if let (PasswordVerdict::Refused { audit: Some(why) }, Some(a)) = (verdict, a) {
                    self.audit(AuditEvent::user(AuditKind::SignInPassword, &a.id).failed().details(why), ctx).await;
                }
                return Err(LoginError::InvalidCredentials);
            }
        };
        let now = self.now();
        let methods = self.methods_of(&account.id).await?;
        let has_methods = !methods.is_empty();
        // Each fact is read only when it can change the answer.
        let required = !has_methods && self.two_factor_required(&account.id).await?;
        let remembered = has_methods && self.browser_remembered(&account.id, remembered).await?;
        match machine::after_password(has_methods, required, remembered) {
            AfterPassword::Enrol => {
                let session = self.start_session(&account.id, SessionKind::Enrollment, Some(now), None, ctx).await?;
                let event = AuditEvent::user(AuditKind::SignInSucceeded, &account.id);
                self.audit(event.details("password; enrolment required"), ctx).await;
                meters::sign_in(SignInResult::EnrollmentRequired, SignInMethod::Password);
                return Ok(LoginOutcome::EnrollmentRequired { session, account: account.id });
            }
            AfterPassword::SignedIn => {
                let session = self.start_session(&account.id, SessionKind::Full, Some(now), None, ctx).await?;
                self.notify_if_new_device(&account.id, ctx).await;
                self.notify_mandate_once(&account, ctx).await;
                self.audit(AuditEvent::user(AuditKind::SignInSucceeded, &account.id).details("password"), ctx).await;
                meters::sign_in(SignInResult::Success, SignInMethod::Password);
                return Ok(LoginOutcome::Authenticated { session, account: account.id });
            }
            AfterPassword::Remembered => {
                let session = self.start_session(&account.id, SessionKind::Full, Some(now), None, ctx).await?;
                self.notify_if_new_device(&account.id, ctx).await;
                let event = AuditEvent::user(AuditKind::SignInSucceeded, &account.id);
                self.audit(event.details("password; remembered browser"), ctx).await;
                meters::sign_in(SignInResult::Success, SignInMethod::RememberedBrowser);
                return Ok(LoginOutcome::Authenticated { session, account: account.id });
            }
            AfterPassword::SecondStep => {}
        }
        let login_token = Token::generate(self.rng());
        self.store
            .insert_login_token(&LoginTokenRecord {
                id: login_token.hash(),
                account_id: account.id.clone(),
                created_at: now,
                expires_at: now.plus_secs(self.settings.login_token_secs),
                failures: 0,
            })
            .await?;
        self.audit(AuditEvent::user(AuditKind::SignInPassword, &account.id).details("second factor required"), ctx)
            .await;
        meters::sign_in(SignInResult::SecondFactorRequired, SignInMethod::Password);
        Ok(LoginOutcome::SecondFactorRequired { login_token, methods })
    }

    /// Verifies a password under the throttle: the account's (or unknown
    /// e-mail's) counter and the source address's hourly cap. A throttled
    /// attempt is refused before any hashing, alike for unknown e-mails.
    pub(crate) async fn guarded_password(
        &self,
        account: Option<&AccountRecord>,
        scope: Scope,
        password: Password,
        ctx: &RequestContext,
    ) -> Result<PasswordCheck, InternalError> {
        Ok(self.checked_password(account, scope, password, true, ctx).await?.0)
    }

    /// `guarded_password`, with `can_succeed` false for an attempt that must
    /// fail whatever the password (a sign-in from outside the account's IP
    /// allow-list, SEC-61): it costs the same Argon2id work and counts as a
    /// failure, so neither the answer nor the throttles tell a right password
    /// from a wrong one. Also says whether the password was right.
    pub(crate) async fn checked_password(
        &self,
        account: Option<&AccountRecord>,
        scope: Scope,
        password: Password,
        can_succeed: bool,
        ctx: &RequestContext,
    ) -> Result<(PasswordCheck, bool), InternalError> {
        // The attempt is counted before the hash is computed, in the same
        // atomic step as the decision: a burst cannot have more passwords
        // evaluated than one request after another could.
        let address = Scope::Address(address_key(&ctx.ip));
        let admission = self.throttle_admit(&[scope.clone(), address.clone()]).await?;
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
            self.audit(event.failed().details("password"), ctx).await;
            return Ok((PasswordCheck::Throttled { retry_after }, false));
        }
        let ok = self.verify_password(password, account.map(|a| a.password_hash.clone())).await?;
        if ok && can_succeed {
            self.throttle_reset(std::slice::from_ref(&scope)).await?;
            // The address cap counts failed passwords only.
            self.throttle_refund(&address).await?;
            return Ok((PasswordCheck::Right, true));
        }
        let n = admission.counts.first().copied().unwrap_or_default();
        if n == LOCK_AT {
            meters::lock(scope.kind());
        }
        if let (Some(a), true) = (account, n == LOCK_AT) {
            self.audit(AuditEvent::user(AuditKind::PasswordLocked, &a.id).failed(), ctx).await;
            self.notify(&a.id, Notice::PasswordLocked, ctx).await;
        }
        Ok((PasswordCheck::Wrong, ok))
    }

    /// The second step's methods for a live login token, read afresh on
    /// every page (`None`: the token is spent or expired). Held nowhere
    /// else, so a client cannot change the list it is offered, and a factor
    /// locked or removed since the password step drops out.
    pub async fn login_methods(&self, login_token: &str) -> Result<Option<Vec<Method>>, InternalError> {
        let now = self.now();
        match self.store.login_token(&Token::presented(login_token).hash()).await? {
            Some(t) if self.login_token_usable(&t, now) => Ok(Some(self.methods_of(&t.account_id).await?)),
            _ => Ok(None),
        }
    }

    /// Live and not yet worn out by wrong codes (§2.6: 5 kill it).
    pub(crate) fn login_token_usable(&self, t: &LoginTokenRecord, now: crate::time::Timestamp) -> bool {
        now < t.expires_at && t.failures < self.settings.login_token_max_failures
    }

    /// Begins the second step's challenge for `method`, bound to this login
    /// token (`POST /login/challenge`): a code sent by text, call or e-mail,
    /// or a push. `place` is the sign-in's approximate place when the
    /// operator's proxy tells it (a GeoIP header).
    pub async fn login_challenge(
        &self,
        login_token: &str,
        method: Method,
        place: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        let id = Token::presented(login_token).hash();
        let now = self.now();
        let token = self.store.login_token(&id).await.map_err(SendError::from)?;
        let Some(token) = token.filter(|t| self.login_token_usable(t, now)) else {
            return Err(SendError::LoginExpired.into());
        };
        let bound = Binding { purpose: CodePurpose::Login, id: id.as_str() };
        self.begin_challenge(&token.account_id, method, bound, place.map(str::to_owned), ctx).await
    }

    /// The second step.
    pub async fn verify_login(
        &self,
        login_token: &str,
        method: Method,
        proof: Proof<'_>,
        ctx: &RequestContext,
    ) -> Result<Verified, LoginError> {
        let id = Token::presented(login_token).hash();
        let now = self.now();
        // The attempt is counted on the token before the code is checked
        // (§2.6: 5 wrong codes kill it, however many arrive at once).
        let max = self.settings.login_token_max_failures;
        let counted = |result| meters::sign_in(result, SignInMethod::Factor(method));
        let Some(token) = self.store.take_login_attempt(&id, now, max).await? else {
            counted(SignInResult::Expired);
            return Err(LoginError::InvalidCode);
        };
        if !self.address_allowed(&token.account_id, &ctx.ip).await? {
            // The password step came from a listed address, this one did not.
            self.audit(
                AuditEvent::user(AuditKind::SignInOutsideAllowlist, &token.account_id).failed().details("second step"),
                ctx,
            )
            .await;
            counted(SignInResult::IpNotAllowed);
            return Err(LoginError::InvalidCode);
        }
        let bound = Binding { purpose: CodePurpose::Login, id: id.as_str() };
        let proof = match self.prove_second_factor(&token.account_id, method, proof, bound, ctx).await {
            Ok(proof) => proof,
            Err(e) => {
                let (refusal, refund) = machine::second_step_refusal(e);
                match refusal {
                    LoginError::Throttled { .. } => counted(SignInResult::Throttled),
                    LoginError::FactorLocked => counted(SignInResult::Locked),
                    LoginError::InvalidCode | LoginError::WrongCode { .. } | LoginError::InvalidCredentials => {
                        counted(SignInResult::BadCode);
                    }
                    LoginError::Internal(_) => {}
                }
                if refund {
                    self.store.refund_login_attempt(&id).await?;
                }
                return Err(refusal);
            }
        };
        let Some(proof) = proof else {
            self.audit(
                AuditEvent::user(AuditKind::SignInSecondFactor, &token.account_id)
                    .failed()
                    .details(format!("method {}", method.as_str())),
                ctx,
            )
            .await;
            if machine::token_exhausted(token.failures, max) {
                self.audit(AuditEvent::user(AuditKind::LoginTokenExhausted, &token.account_id).failed(), ctx).await;
            }
            counted(SignInResult::BadCode);
            return Err(LoginError::WrongCode { tries_left: (max - token.failures).max(0) });
        };
        // Exactly one request may turn this login token into a session: the
        // token is consumed, the session stored and the sign-in time set in
        // one transaction.
        let (session, record) =
            self.new_session(&token.account_id, SessionKind::Full, Some(token.created_at), Some(now), ctx);
        if !self.store.finish_sign_in(&id, now, &record).await? {
            // Another request with this login token won the race.
            counted(SignInResult::Expired);
            return Err(LoginError::InvalidCode);
        }
        self.notify_if_new_device(&token.account_id, ctx).await;
        self.audit(
            AuditEvent::user(AuditKind::SignInSucceeded, &token.account_id)
                .factor(proof.factor_id.clone())
                .details(format!("method {}", method.as_str())),
            ctx,
        )
        .await;
        counted(SignInResult::Success);
        Ok(Verified { session, account: token.account_id, recovery_codes_remaining: proof.recovery_codes_remaining })
    }
}

impl Twostep {
    /// Before the operator's mandate is in force, mails an account without
    /// 2FA that it is coming: once per account, recorded in the audit log.
    /// Nothing is recorded for an unverified address (no notice goes
    /// there), so the notice still comes once the address is verified.
    async fn notify_mandate_once(&self, account: &AccountRecord, ctx: &RequestContext) {
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

/// How many earlier sign-ins are compared with a new one.
const KNOWN_DEVICE_LOOKBACK: i64 = 50;

impl Twostep {
    /// Mails a notice when a sign-in comes from a kind of client (browser and
    /// system, as `device::describe` names it) that none of the account's
    /// recent sign-ins used. Addresses alone change too often (mobile
    /// networks) to be worth a mail. The very first sign-in is not news.
    /// Called before the sign-in itself is audited.
    async fn notify_if_new_device(&self, account: &AccountId, ctx: &RequestContext) {
        let filter = crate::audit::AuditFilter {
            account_id: Some(account.clone()),
            kind: Some(AuditKind::SignInSucceeded.as_str().to_owned()),
            limit: KNOWN_DEVICE_LOOKBACK,
            ..Default::default()
        };
        let Ok(earlier) = self.store.entries(&filter).await else { return };
        if earlier.is_empty() {
            return;
        }
        let device = crate::abuse::device::describe(&ctx.user_agent);
        let known = earlier.iter().any(|e| crate::abuse::device::describe(&e.user_agent) == device);
        if !known {
            self.audit(AuditEvent::user(AuditKind::NewDeviceSignIn, account).details(device.clone()), ctx).await;
            self.notify(account, Notice::NewSignIn { device: format!("{device} at {}", ctx.ip) }, ctx).await;
        }
    }
}
