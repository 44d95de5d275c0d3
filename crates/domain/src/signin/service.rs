//! `SignIn`: the sign-in state machine carried out (§2.6). It holds only
//! what it decides with (the accounts it signs in, the password guard,
//! sessions and login tokens, the audit log and notices) and asks the
//! other areas through `SignInPorts`, so its rules are unit-tested with
//! in-memory fakes (`signin/tests.rs`). The decisions themselves are the
//! pure functions of `machine.rs`.

use std::sync::Arc;

use crate::abuse::throttle::Scope;
use crate::accounts::email::Email;
use crate::accounts::password::Password;
use crate::accounts::password_guard::PasswordGuard;
use crate::accounts::store::AccountStore;
use crate::audit::{AuditEvent, AuditKind, Auditor, RequestContext};
use crate::crypto::{HashPurpose, Keyring};
use crate::error::{LoginError, StoreError};
use crate::factors::sent_code::SendError;
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::{Binding, Challenge, ChallengeError, LoginTry, Method, Proof};
use crate::ids::AccountId;
use crate::meters::{self, SignInMethod, SignInResult};
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::ports::Clock;
use crate::sessions::service::Sessions;
use crate::sessions::store::{Finished, SessionKind};
use crate::signin::login::{LoginOutcome, Verified};
use crate::signin::machine::{self, AfterPassword, PasswordCheck, PasswordVerdict};
use crate::signin::ports::SignInPorts;
use crate::token::Token;

/// How many earlier sign-ins a new one is compared with for "new device".
const KNOWN_DEVICE_LOOKBACK: i64 = 50;

pub(crate) struct SignIn {
    pub accounts: Arc<dyn AccountStore>,
    pub guard: Arc<PasswordGuard>,
    pub notices: Arc<Notices>,
    pub sessions: Arc<Sessions>,
    pub auditor: Arc<Auditor>,
    pub keys: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
}

impl SignIn {
    /// The password step. `remembered` is the browser's remember-me token,
    /// if it has one: a live one for this account skips the second factor
    /// (never the password).
    pub async fn login(
        &self,
        ports: &dyn SignInPorts,
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
            Some(e) => self.accounts.account_by_email(e).await?,
            None => None,
        };
        let scope = match &account {
            Some(a) => Scope::Password(a.id.clone()),
            None => self.unknown_email_scope(parsed.as_ref(), email),
        };
        // SEC-61: from outside the account's IP allow-list the password is
        // checked all the same but cannot succeed: the same work and
        // throttles, so neither the answer nor the counters tell a right
        // password from a wrong one.
        let allowed = ports.address_allowed(account.as_ref().map(|a| &a.id), &ctx.ip).await?;
        let (check, right) = self.guard.check(account.as_ref(), scope, password, allowed, ctx).await?;
        if let (false, Some(a), false) = (allowed, &account, matches!(check, PasswordCheck::Throttled { .. })) {
            ports.refused_outside(a, right, ctx).await;
        }
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
                    self.auditor
                        .record(AuditEvent::user(AuditKind::SignInPassword, &a.id).failed().details(why), ctx)
                        .await;
                }
                return Err(LoginError::InvalidCredentials);
            }
        };
        let now = self.clock.now();
        let methods = ports.methods_of(&account.id).await?;
        let has_methods = !methods.is_empty();
        // Each fact is read only when it can change the answer.
        let required = !has_methods && ports.two_factor_required(&account.id).await?;
        let remembered = has_methods && ports.browser_remembered(&account.id, remembered).await?;
        let (kind, details, method) = match machine::after_password(has_methods, required, remembered) {
            AfterPassword::Enrol => (SessionKind::Enrollment, "password; enrolment required", SignInMethod::Password),
            AfterPassword::SignedIn => (SessionKind::Full, "password", SignInMethod::Password),
            AfterPassword::Remembered => {
                (SessionKind::Full, "password; remembered browser", SignInMethod::RememberedBrowser)
            }
            AfterPassword::SecondStep => {
                let login_token = self.sessions.open_login(&account.id).await?;
                let event = AuditEvent::user(AuditKind::SignInPassword, &account.id).details("second factor required");
                self.auditor.record(event, ctx).await;
                meters::sign_in(SignInResult::SecondFactorRequired, SignInMethod::Password);
                return Ok(LoginOutcome::SecondFactorRequired { login_token, methods });
            }
        };
        let (session, _) = self.sessions.start(&account.id, kind, Some(now), None, ctx).await?;
        self.accounts.record_sign_in(&account.id, now).await?;
        if kind == SessionKind::Full {
            self.new_device_notice(&account.id, ctx).await;
        }
        if matches!(method, SignInMethod::Password) && kind == SessionKind::Full {
            ports.mandate_notice(&account, ctx).await;
        }
        self.auditor.record(AuditEvent::user(AuditKind::SignInSucceeded, &account.id).details(details), ctx).await;
        if kind == SessionKind::Enrollment {
            meters::sign_in(SignInResult::EnrollmentRequired, method);
            return Ok(LoginOutcome::EnrollmentRequired { session, account: account.id });
        }
        meters::sign_in(SignInResult::Success, method);
        Ok(LoginOutcome::Authenticated { session, account: account.id })
    }

    /// The throttle scope of an e-mail with no account: keyed, so the
    /// counters do not list the addresses tried.
    fn unknown_email_scope(&self, email: Option<&Email>, raw: &str) -> Scope {
        let key = email.map_or(raw, Email::as_str);
        let mac = self.keys.keyed_hash(HashPurpose::ThrottleKey, &[key.as_bytes()]);
        Scope::UnknownEmail(data_encoding::HEXLOWER.encode(&mac[..16]))
    }

    /// The second step's methods for a live login token, read afresh on
    /// every page (`None`: the token is spent or expired). Held nowhere
    /// else, so a client cannot change the list it is offered, and a factor
    /// locked or removed since the password step drops out.
    pub async fn methods(&self, ports: &dyn SignInPorts, login_token: &str) -> Result<Option<Vec<Method>>, StoreError> {
        match self.sessions.usable_login(&Token::presented(login_token).hash()).await? {
            Some(t) => Ok(Some(ports.methods_of(&t.account_id).await?)),
            None => Ok(None),
        }
    }

    /// Begins the second step's challenge for `method`, bound to this login
    /// token: a code sent by text, call or e-mail, or a push.
    pub async fn challenge(
        &self,
        ports: &dyn SignInPorts,
        login_token: &str,
        method: Method,
        place: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        let id = Token::presented(login_token).hash();
        let Some(token) = self.sessions.usable_login(&id).await.map_err(SendError::from)? else {
            return Err(SendError::LoginExpired.into());
        };
        let bound = Binding { purpose: CodePurpose::Login, id: id.as_str() };
        ports.begin_challenge(&token.account_id, method, bound, place.map(str::to_owned), ctx).await
    }

    /// The second step: the try is counted on the login token before the
    /// proof is checked; a right proof turns the token into one session.
    pub async fn verify(
        &self,
        ports: &dyn SignInPorts,
        login_token: &str,
        method: Method,
        proof: Proof<'_>,
        ctx: &RequestContext,
    ) -> Result<Verified, LoginError> {
        let id = Token::presented(login_token).hash();
        let max = self.sessions.lifetimes().login_token_max_failures;
        let counted = |result| meters::sign_in(result, SignInMethod::Factor(method));
        // Read, not yet counted: the try is counted with the factor's
        // throttles in one write, or not at all when they refuse it.
        let Some(token) = self.sessions.usable_login(&id).await? else {
            counted(SignInResult::Expired);
            return Err(LoginError::InvalidCode);
        };
        let account = &token.account_id;
        if !ports.address_allowed(Some(account), &ctx.ip).await? {
            // The password step came from a listed address, this one did not.
            let event = AuditEvent::user(AuditKind::SignInOutsideAllowlist, account).failed().details("second step");
            self.auditor.record(event, ctx).await;
            counted(SignInResult::IpNotAllowed);
            return Err(LoginError::InvalidCode);
        }
        let bound = Binding { purpose: CodePurpose::Login, id: id.as_str() };
        let tried = self.sessions.login_try(&id);
        let (proof, failures) = match ports.prove(account, method, proof, bound, tried, ctx).await {
            Ok(LoginTry::Checked { proven, failures }) => (proven, failures),
            Ok(LoginTry::Gone) => {
                // Spent or worn out by racing requests since it was read.
                counted(SignInResult::Expired);
                return Err(LoginError::InvalidCode);
            }
            Err(e) => {
                let refusal = machine::second_step_refusal(e);
                match refusal {
                    LoginError::Throttled { .. } => counted(SignInResult::Throttled),
                    LoginError::FactorLocked => counted(SignInResult::Locked),
                    LoginError::InvalidCode | LoginError::WrongCode { .. } | LoginError::InvalidCredentials => {
                        counted(SignInResult::BadCode);
                    }
                    LoginError::Internal(_) => {}
                }
                return Err(refusal);
            }
        };
        let wrong = || async move {
            let event = AuditEvent::user(AuditKind::SignInSecondFactor, account).failed();
            self.auditor.record(event.details(format!("method {}", method.as_str())), ctx).await;
            if machine::token_exhausted(failures, max) {
                self.auditor.record(AuditEvent::user(AuditKind::LoginTokenExhausted, account).failed(), ctx).await;
            }
            counted(SignInResult::BadCode);
            LoginError::WrongCode { tries_left: (max - failures).max(0) }
        };
        let Some(proof) = proof else {
            return Err(wrong().await);
        };
        // The sign-in's audit rows commit with its session (SEC-63): the
        // device is judged against earlier sign-ins before this one is one.
        let device = self.new_device(account, ctx).await;
        let mut audit = Vec::with_capacity(2);
        if let Some(device) = &device {
            audit.push(self.auditor.entry(AuditEvent::user(AuditKind::NewDeviceSignIn, account).details(device), ctx));
        }
        let event = AuditEvent::user(AuditKind::SignInSucceeded, account).factor(proof.factor_id.clone());
        audit.push(self.auditor.entry(event.details(format!("method {}", method.as_str())), ctx));
        // Exactly one request may turn this login token into a session, and
        // spend the proof's step, in one transaction with its audit rows.
        let session = match self.sessions.finish_login(&token, &proof.writes, &audit, ctx).await? {
            Ok((session, _)) => session,
            Err(Finished::ProofSpent) => {
                ports.proof_spent_first(account, &proof.writes, ctx).await;
                return Err(wrong().await);
            }
            Err(_) => {
                // Another request with this login token won the race.
                counted(SignInResult::Expired);
                return Err(LoginError::InvalidCode);
            }
        };
        proof.writes.audit.iter().chain(&audit).for_each(Auditor::announce);
        if let Some(device) = device {
            self.notices.notify(account, Notice::NewSignIn { device: format!("{device} at {}", ctx.ip) }, ctx).await;
        }
        counted(SignInResult::Success);
        Ok(Verified { session, account: token.account_id, recovery_codes_remaining: proof.recovery_codes_remaining })
    }

    /// Mails a notice when a sign-in comes from a kind of client (browser and
    /// system, as `device::describe` names it) that none of the account's
    /// recent sign-ins used. Addresses alone change too often (mobile
    /// networks) to be worth a mail. The very first sign-in is not news.
    /// Called before the sign-in itself is audited.
    pub(crate) async fn new_device_notice(&self, account: &AccountId, ctx: &RequestContext) {
        let Some(device) = self.new_device(account, ctx).await else { return };
        self.auditor.record(AuditEvent::user(AuditKind::NewDeviceSignIn, account).details(device.clone()), ctx).await;
        self.notices.notify(account, Notice::NewSignIn { device: format!("{device} at {}", ctx.ip) }, ctx).await;
    }

    /// The kind of client signing in, when none of the account's recent
    /// sign-ins used it (`None`: known, the first sign-in, or unreadable).
    async fn new_device(&self, account: &AccountId, ctx: &RequestContext) -> Option<String> {
        let earlier = self.auditor.latest(account, AuditKind::SignInSucceeded, KNOWN_DEVICE_LOOKBACK).await.ok()?;
        if earlier.is_empty() {
            return None;
        }
        let device = crate::abuse::device::describe(&ctx.user_agent);
        let known = earlier.iter().any(|e| crate::abuse::device::describe(&e.user_agent) == device);
        (!known).then_some(device)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
