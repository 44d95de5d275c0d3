//! The sign-in state machine as a service, against in-memory stores and a
//! fake of the other areas (`SignInPorts`): the real throttles, hasher,
//! sessions and audit log, so each rule here is the server's rule.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;

use super::SignIn;
use crate::abuse::throttle::{TokenTried, TokenTry};
use crate::abuse::throttles::Throttles;
use crate::accounts::password::Password;
use crate::accounts::store::AccountRecord;
use crate::audit::{AuditKind, RequestContext};
use crate::error::{FactorError, LoginError, StoreError};
use crate::factors::sent_code::SendError;
use crate::factors::store::{ProofWrites, StepSpend};
use crate::factors::{Binding, Challenge, ChallengeError, LoginTry, Method, Proof, Proven, recovery, totp};
use crate::ids::{AccountId, AuthenticatorId};
use crate::notify::notice::Notice;
use crate::sessions::store::SessionKind;
use crate::signin::login::LoginOutcome;
use crate::signin::ports::SignInPorts;
use crate::testing::kit::Kit;
use crate::testing::sessions::MemSessions;
use crate::testing::{account, ctx};

const PASSWORD: &str = "correct horse battery staple";
const RIGHT_CODE: &str = "123456";

/// The other areas, as sign-in sees them.
#[derive(Default)]
struct Ports {
    methods: Mutex<Vec<Method>>,
    outside: AtomicBool,
    required: AtomicBool,
    remembered: AtomicBool,
    /// `prove` answers this instead of checking the code.
    refuse_with: Mutex<Option<FactorError>>,
    outside_refusals: Mutex<Vec<bool>>,
    mandate_told: Mutex<usize>,
    /// When set, `prove` spends every login token in it first: a racing
    /// request that finished the sign-in while this one was checking.
    on_prove: Mutex<Option<Arc<MemSessions>>>,
    /// How many right proofs lost their step to a racing sign-in.
    spent_first: Mutex<usize>,
    /// The time step the right code is from.
    step: AtomicI64,
    /// The real throttles, counting the login token's tries.
    throttles: OnceLock<Arc<Throttles>>,
}

#[async_trait]
impl SignInPorts for Ports {
    async fn methods_of(&self, _: &AccountId) -> Result<Vec<Method>, StoreError> {
        Ok(self.methods.lock().expect("lock").clone())
    }
    async fn begin_challenge(
        &self,
        _: &AccountId,
        _: Method,
        _: Binding<'_>,
        _: Option<String>,
        _: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        Err(SendError::MethodUnavailable.into())
    }
    async fn prove(
        &self,
        _: &AccountId,
        _: Method,
        proof: Proof<'_>,
        _: Binding<'_>,
        token: TokenTry<'_>,
        _: &RequestContext,
    ) -> Result<LoginTry, FactorError> {
        // Refused unevaluated: the store rolls the token's try back with it.
        if let Some(e) = self.refuse_with.lock().expect("lock").take() {
            return Err(e);
        }
        let throttles = self.throttles.get().expect("fixture sets the throttles");
        let failures = match throttles.admit_with(&[], Some(token)).await?.token {
            TokenTried::Counted { failures } => failures,
            TokenTried::Gone | TokenTried::NotCounted => return Ok(LoginTry::Gone),
        };
        if let Some(store) = self.on_prove.lock().expect("lock").take() {
            store.login_tokens.lock().expect("lock").clear();
        }
        if !matches!(proof, Proof::Code(c) if c == RIGHT_CODE) {
            return Ok(LoginTry::Checked { proven: None, failures });
        }
        let mut proven = Proven::new("auth1");
        let step = self.step.load(Ordering::SeqCst);
        proven.writes.step = Some(StepSpend { authenticator: AuthenticatorId::from_stored("auth1"), step });
        Ok(LoginTry::Checked { proven: Some(proven), failures })
    }
    async fn proof_spent_first(&self, _: &AccountId, writes: &ProofWrites, _: &RequestContext) {
        assert!(writes.step.is_some(), "only a step is spent first");
        *self.spent_first.lock().expect("lock") += 1;
    }
    async fn address_allowed(&self, _: Option<&AccountId>, _: &str) -> Result<bool, StoreError> {
        Ok(!self.outside.load(Ordering::SeqCst))
    }
    async fn two_factor_required(&self, _: &AccountId) -> Result<bool, StoreError> {
        Ok(self.required.load(Ordering::SeqCst))
    }
    async fn browser_remembered(&self, _: &AccountId, token: Option<&str>) -> Result<bool, StoreError> {
        Ok(token.is_some() && self.remembered.load(Ordering::SeqCst))
    }
    async fn refused_outside(&self, _: &AccountRecord, right_password: bool, _: &RequestContext) {
        self.outside_refusals.lock().expect("lock").push(right_password);
    }
    async fn mandate_notice(&self, _: &AccountRecord, _: &RequestContext) {
        *self.mandate_told.lock().expect("lock") += 1;
    }
}

struct Fixture {
    signin: SignIn,
    ports: Ports,
    store: Arc<MemSessions>,
    kit: Kit,
}

fn fixture() -> Fixture {
    let kit = Kit::new();
    let mut ann = account("a1", "ann@example.com");
    let password = Password::for_sign_in(PASSWORD).expect("pw");
    ann.password_hash = kit.hasher.hashing().hash(&password, kit.rng.as_ref()).expect("hash");
    let store = Arc::new(MemSessions::with_account(ann));
    *store.audit.lock().expect("lock") = Some(kit.audit.clone());
    let notices = kit.notices(store.clone());
    let signin = SignIn {
        accounts: store.clone(),
        guard: kit.guard(&notices),
        notices,
        sessions: kit.sessions(store.clone(), false),
        auditor: kit.auditor.clone(),
        keys: kit.keys.clone(),
        clock: kit.clock.clone(),
    };
    kit.counters.count_tokens_in(store.clone());
    let ports = Ports::default();
    let _ = ports.throttles.set(kit.throttles.clone());
    Fixture { signin, ports, store, kit }
}

fn with_app(f: &Fixture) {
    *f.ports.methods.lock().expect("lock") = vec![totp::TOTP, recovery::RECOVERY_CODE];
}

impl Fixture {
    async fn login(&self, email: &str, password: &str) -> Result<LoginOutcome, LoginError> {
        self.login_from(email, password, None, &ctx()).await
    }

    async fn login_from(
        &self,
        email: &str,
        password: &str,
        remembered: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, LoginError> {
        self.signin.login(&self.ports, email, password, remembered, ctx).await
    }

    async fn login_token(&self) -> String {
        match self.login("ann@example.com", PASSWORD).await {
            Ok(LoginOutcome::SecondFactorRequired { login_token, .. }) => login_token.expose().to_owned(),
            other => panic!("expected the second step, got {other:?}"),
        }
    }

    async fn verify(&self, token: &str, code: &str) -> Result<crate::signin::login::Verified, LoginError> {
        self.signin.verify(&self.ports, token, totp::TOTP, Proof::Code(code), &ctx()).await
    }

    fn ann(&self) -> AccountRecord {
        self.store.accounts.lock().expect("lock").get("a1").cloned().expect("ann")
    }
}

fn refused(r: Result<LoginOutcome, LoginError>) -> LoginError {
    match r {
        Err(e) => e,
        Ok(o) => panic!("expected a refusal, got {o:?}"),
    }
}

#[tokio::test]
async fn a_right_password_without_a_factor_is_a_full_session_and_records_the_sign_in() {
    let f = fixture();
    let outcome = f.login("ann@example.com", PASSWORD).await.expect("signed in");
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
    assert_eq!(f.store.session_count(), 1);
    assert!(f.ann().last_sign_in_at.is_some());
    assert_eq!(f.kit.audited(AuditKind::SignInSucceeded), vec![true]);
    assert_eq!(*f.ports.mandate_told.lock().expect("lock"), 1, "a coming mandate is told at a password sign-in");
}

#[tokio::test]
async fn sec12_unknown_wrong_and_disabled_are_one_refusal() {
    let f = fixture();
    assert!(matches!(refused(f.login("nobody@example.com", PASSWORD).await), LoginError::InvalidCredentials));
    assert!(matches!(refused(f.login("ann@example.com", "wrong password here").await), LoginError::InvalidCredentials));
    f.store.disable(&AccountId::from_stored("a1"), f.clock_now());
    assert!(matches!(refused(f.login("ann@example.com", PASSWORD).await), LoginError::InvalidCredentials));
    assert_eq!(f.store.session_count(), 0);
    assert_eq!(
        f.kit.audited(AuditKind::SignInPassword),
        vec![false, false],
        "both refusals with an account are logged"
    );
}

#[tokio::test]
async fn sec15_an_unknown_email_backs_off_exactly_like_a_real_account() {
    let f = fixture();
    for email in ["nobody@example.com", "ann@example.com"] {
        for _ in 0..5 {
            assert!(matches!(refused(f.login(email, "wrong password here").await), LoginError::InvalidCredentials));
        }
        let sixth = refused(f.login(email, PASSWORD).await);
        assert!(matches!(sixth, LoginError::Throttled { retry_after: 1 }), "{email}: {sixth:?}");
    }
    assert_eq!(f.kit.audited(AuditKind::Throttled), vec![false, false], "both throttles audited");
}

#[tokio::test]
async fn sec32_the_right_password_waits_out_the_backoff_then_clears_it() {
    let f = fixture();
    for _ in 0..5 {
        let _ = f.login("ann@example.com", "wrong password here").await;
    }
    assert!(matches!(refused(f.login("ann@example.com", PASSWORD).await), LoginError::Throttled { .. }));
    f.kit.clock.advance(1);
    f.login("ann@example.com", PASSWORD).await.expect("after the wait, the right password");
    for _ in 0..5 {
        let _ = f.login("ann@example.com", "wrong password here").await;
    }
    assert!(
        matches!(refused(f.login("ann@example.com", "wrong password here").await), LoginError::Throttled { .. }),
        "the count started over at the success, and backs off again at five"
    );
}

#[tokio::test]
async fn sec32_the_hundredth_wrong_password_locks_and_tells_the_owner() {
    let f = fixture();
    for n in 0..100 {
        // Other addresses each time, so the address cap is not what stops it.
        let from = RequestContext { ip: format!("198.51.100.{}", n % 250), ..ctx() };
        f.kit.clock.advance(crate::abuse::throttle::MAX_DELAY_SECS + 1);
        let _ = f.login_from("ann@example.com", "wrong password here", None, &from).await;
    }
    assert_eq!(f.kit.audited(AuditKind::PasswordLocked), vec![false]);
    assert_eq!(f.kit.subjects(), vec![Notice::PasswordLocked.subject()], "the owner is told, once");
    f.kit.clock.advance(24 * 3600);
    assert!(matches!(refused(f.login("ann@example.com", PASSWORD).await), LoginError::Throttled { .. }));
}

#[tokio::test]
async fn sec61_outside_the_allow_list_right_and_wrong_passwords_fail_alike_and_both_count() {
    let f = fixture();
    f.ports.outside.store(true, Ordering::SeqCst);
    let right = refused(f.login("ann@example.com", PASSWORD).await);
    let wrong = refused(f.login("ann@example.com", "wrong password here").await);
    assert!(matches!(right, LoginError::InvalidCredentials) && matches!(wrong, LoginError::InvalidCredentials));
    assert_eq!(*f.ports.outside_refusals.lock().expect("lock"), vec![true, false], "the owner's notice words them");
    for _ in 0..3 {
        let _ = f.login("ann@example.com", PASSWORD).await;
    }
    f.ports.outside.store(false, Ordering::SeqCst);
    assert!(
        matches!(refused(f.login("ann@example.com", PASSWORD).await), LoginError::Throttled { .. }),
        "five right passwords from outside count as five failures"
    );
}

#[tokio::test]
async fn with_a_factor_the_password_opens_the_second_step_and_no_session() {
    let f = fixture();
    with_app(&f);
    match f.login("ann@example.com", PASSWORD).await.expect("second step") {
        LoginOutcome::SecondFactorRequired { methods, .. } => {
            assert_eq!(methods, vec![totp::TOTP, recovery::RECOVERY_CODE]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.store.session_count(), 0);
    assert_eq!(f.kit.audited(AuditKind::SignInPassword), vec![true]);
}

#[tokio::test]
async fn sec47_required_2fa_without_a_factor_gives_an_enrolment_only_session() {
    let f = fixture();
    f.ports.required.store(true, Ordering::SeqCst);
    let LoginOutcome::EnrollmentRequired { session, .. } = f.login("ann@example.com", PASSWORD).await.expect("in")
    else {
        panic!("expected enrolment");
    };
    assert_eq!(f.store.session(&session.hash()).expect("row").kind, SessionKind::Enrollment);
    assert_eq!(*f.ports.mandate_told.lock().expect("lock"), 0);
}

#[tokio::test]
async fn a_remembered_browser_skips_the_second_factor_but_never_the_password() {
    let f = fixture();
    with_app(&f);
    f.ports.remembered.store(true, Ordering::SeqCst);
    let ok = f.login_from("ann@example.com", PASSWORD, Some("browser"), &ctx()).await.expect("in");
    assert!(matches!(ok, LoginOutcome::Authenticated { .. }));
    let wrong = f.login_from("ann@example.com", "wrong password here", Some("browser"), &ctx()).await;
    assert!(matches!(refused(wrong), LoginError::InvalidCredentials));
    assert!(
        matches!(f.login("ann@example.com", PASSWORD).await, Ok(LoginOutcome::SecondFactorRequired { .. })),
        "without its token the browser is not remembered"
    );
}

#[tokio::test]
async fn wrong_codes_count_down_the_login_token_and_the_fifth_ends_it() {
    let f = fixture();
    with_app(&f);
    let token = f.login_token().await;
    for left in (0..5).rev() {
        match f.verify(&token, "000000").await {
            Err(LoginError::WrongCode { tries_left }) => assert_eq!(tries_left, left),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(f.kit.audited(AuditKind::LoginTokenExhausted), vec![false]);
    assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::InvalidCode)), "even the right code now");
    assert!(f.signin.methods(&f.ports, &token).await.expect("read").is_none());
}

#[tokio::test]
async fn sec37_a_right_code_gives_one_session_and_the_login_token_is_spent() {
    let f = fixture();
    with_app(&f);
    let token = f.login_token().await;
    let verified = f.verify(&token, RIGHT_CODE).await.expect("signed in");
    let row = f.store.session(&verified.session.hash()).expect("session");
    assert!(row.password_at.is_some() && row.second_factor_at.is_some(), "both proofs recorded");
    assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::InvalidCode)));
    assert_eq!(f.store.session_count(), 1);
    let succeeded = f.kit.audit.0.lock().expect("lock").iter().rev().find(|e| e.kind == "sign_in_succeeded").cloned();
    assert_eq!(succeeded.expect("audited").factor_id.as_deref(), Some("auth1"));
}

#[tokio::test]
async fn a_proof_refused_unevaluated_gives_the_try_back_to_the_login_token() {
    let f = fixture();
    with_app(&f);
    let token = f.login_token().await;
    for _ in 0..10 {
        *f.ports.refuse_with.lock().expect("lock") = Some(FactorError::Throttled { retry_after: 3 });
        assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::Throttled { retry_after: 3 })));
    }
    *f.ports.refuse_with.lock().expect("lock") = Some(FactorError::FactorLocked);
    assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::FactorLocked)));
    f.verify(&token, RIGHT_CODE).await.expect("eleven refusals later the token still has its five tries");
}

#[tokio::test]
async fn sec61_the_second_step_from_outside_the_allow_list_is_refused_and_audited() {
    let f = fixture();
    with_app(&f);
    let token = f.login_token().await;
    f.ports.outside.store(true, Ordering::SeqCst);
    assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::InvalidCode)));
    assert_eq!(f.kit.audited(AuditKind::SignInOutsideAllowlist), vec![false]);
    assert_eq!(f.store.session_count(), 0);
}

#[tokio::test]
async fn a_sign_in_from_a_new_kind_of_client_is_told_but_not_the_first_or_a_known_one() {
    let f = fixture();
    f.login("ann@example.com", PASSWORD).await.expect("first");
    f.login("ann@example.com", PASSWORD).await.expect("same client");
    assert!(f.kit.subjects().is_empty());
    let phone = RequestContext { user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1".into(), ..ctx() };
    f.login_from("ann@example.com", PASSWORD, None, &phone).await.expect("phone");
    assert_eq!(f.kit.subjects(), vec![Notice::NewSignIn { device: String::new() }.subject()]);
    assert_eq!(f.kit.audited(AuditKind::NewDeviceSignIn), vec![true]);
}

#[tokio::test]
async fn a_challenge_needs_a_live_login_token() {
    let f = fixture();
    with_app(&f);
    let err = f.signin.challenge(&f.ports, "no-such-token", totp::TOTP, None, &ctx()).await;
    assert!(matches!(err, Err(ChallengeError::Send(SendError::LoginExpired))));
    let token = f.login_token().await;
    f.kit.clock.advance(301);
    let err = f.signin.challenge(&f.ports, &token, totp::TOTP, None, &ctx()).await;
    assert!(matches!(err, Err(ChallengeError::Send(SendError::LoginExpired))), "five minutes on");
}

impl Fixture {
    fn clock_now(&self) -> crate::time::Timestamp {
        use crate::ports::Clock;
        self.kit.clock.now()
    }
}

#[tokio::test]
async fn a_second_step_from_a_new_kind_of_client_records_it_with_the_session() {
    let f = fixture();
    with_app(&f);
    let first = f.login_token().await;
    f.verify(&first, RIGHT_CODE).await.expect("first sign-in");
    f.ports.step.fetch_add(1, Ordering::SeqCst); // the app's next code
    let token = f.login_token().await;
    let phone =
        RequestContext { user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari".into(), ..ctx() };
    f.signin.verify(&f.ports, &token, totp::TOTP, Proof::Code(RIGHT_CODE), &phone).await.expect("second sign-in");
    // Written by the store's `finish_sign_in`, in the session's transaction:
    // the device judged against the earlier sign-ins, not against this one.
    let kinds: Vec<String> = f.kit.audit.kinds().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds[kinds.len() - 2..], ["new_device_sign_in", "sign_in_succeeded"]);
    assert_eq!(f.kit.audited(AuditKind::NewDeviceSignIn), vec![true], "the first sign-in is not news");
}

#[tokio::test]
async fn a_second_step_whose_token_another_request_spent_records_no_success() {
    let f = fixture();
    with_app(&f);
    let token = f.login_token().await;
    // The attempt is counted, then a racing request consumes the token
    // before this one reaches `finish_sign_in`.
    *f.ports.on_prove.lock().expect("lock") = Some(f.store.clone());
    assert!(matches!(f.verify(&token, RIGHT_CODE).await, Err(LoginError::InvalidCode)));
    assert_eq!(f.store.session_count(), 0);
    assert!(f.kit.audited(AuditKind::SignInSucceeded).is_empty(), "no success row without its session");
}

#[tokio::test]
async fn sec37_a_code_two_sign_ins_race_with_signs_in_once_and_the_other_is_a_replay() {
    let f = fixture();
    with_app(&f);
    let (first, second) = (f.login_token().await, f.login_token().await);
    f.verify(&first, RIGHT_CODE).await.expect("the first spends the step");
    // The second checked the same code before the first committed; its
    // step is spent when it comes to write it.
    match f.verify(&second, RIGHT_CODE).await {
        Err(LoginError::WrongCode { tries_left }) => assert_eq!(tries_left, 4),
        other => panic!("expected a wrong code, got {other:?}"),
    }
    assert_eq!(*f.ports.spent_first.lock().expect("lock"), 1, "told as a replay");
    assert_eq!(f.store.session_count(), 1);
    assert_eq!(f.kit.audited(AuditKind::SignInSucceeded), vec![true]);
    assert_eq!(f.kit.audited(AuditKind::SignInSecondFactor), vec![false]);
    assert!(f.signin.methods(&f.ports, &second).await.expect("read").is_some(), "its login token is still live");
}
