//! `Sessions` against an in-memory store: liveness (SEC-51), rotation
//! (SEC-52), ending sessions everywhere (SEC-53, SEC-54) and the login
//! token's single use (SEC-37, §2.6).

use std::sync::Arc;

use super::Sessions;
use crate::abuse::throttle::{BACKOFF_FROM, Scope, TokenTried, Verdict};
use crate::error::SessionError;
use crate::factors::store::ProofWrites;
use crate::ids::AccountId;
use crate::sessions::cache::SessionChange;
use crate::sessions::store::{Finished, SessionKind};
use crate::testing::kit::Kit;
use crate::testing::sessions::MemSessions;
use crate::testing::{ManualClock, account, ctx};
use crate::time::Timestamp;
use crate::token::Token;

struct Fixture {
    sessions: Arc<Sessions>,
    store: Arc<MemSessions>,
    clock: Arc<ManualClock>,
    kit: Kit,
}

fn fixture(cached: bool) -> Fixture {
    let kit = Kit::new();
    let store = Arc::new(MemSessions::with_account(account("a1", "ann@example.com")));
    kit.counters.count_tokens_in(store.clone());
    Fixture { sessions: kit.sessions(store.clone(), cached), store, clock: kit.clock.clone(), kit }
}

fn ann() -> AccountId {
    AccountId::from_stored("a1")
}

impl Fixture {
    async fn start(&self) -> Token {
        self.sessions.start(&ann(), SessionKind::Full, Some(self.clock_now()), None, &ctx()).await.expect("start").0
    }

    fn clock_now(&self) -> Timestamp {
        use crate::ports::Clock;
        self.clock.now()
    }

    async fn live(&self, token: &Token) -> bool {
        match self.sessions.authenticate(token).await {
            Ok(_) => true,
            Err(SessionError::Unauthenticated) => false,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

#[tokio::test]
async fn sec51_a_session_idle_for_thirty_minutes_is_gone_and_deleted() {
    let f = fixture(false);
    let token = f.start().await;
    f.clock.advance(30 * 60 - 1);
    assert!(f.live(&token).await, "seen within the idle window");
    f.clock.advance(30 * 60 - 1);
    assert!(f.live(&token).await, "each use restarts the idle window");
    f.clock.advance(30 * 60);
    assert!(!f.live(&token).await);
    assert_eq!(f.store.session_count(), 0, "an expired session is removed when met");
}

#[tokio::test]
async fn sec51_an_active_session_ends_at_its_absolute_deadline() {
    let f = fixture(false);
    let token = f.start().await;
    for _ in 0..(12 * 6 - 1) {
        f.clock.advance(10 * 60);
        assert!(f.live(&token).await);
    }
    f.clock.advance(10 * 60);
    assert!(!f.live(&token).await, "12 hours after sign-in, however active");
}

#[tokio::test]
async fn last_seen_is_written_at_most_once_a_minute() {
    let f = fixture(false);
    let token = f.start().await;
    for _ in 0..5 {
        f.clock.advance(10);
        assert!(f.live(&token).await);
    }
    assert_eq!(f.store.touches(), 0, "50 s of requests write nothing");
    f.clock.advance(10);
    assert!(f.live(&token).await);
    assert_eq!(f.store.touches(), 1);
    assert_eq!(f.store.session(&token.hash()).expect("row").last_seen_at, f.clock_now());
}

#[tokio::test]
async fn a_disabled_account_has_no_live_session() {
    let f = fixture(false);
    let token = f.start().await;
    f.store.disable(&ann(), f.clock_now());
    assert!(!f.live(&token).await);
}

#[tokio::test]
async fn sec53_the_cache_answers_repeats_but_a_sign_out_takes_effect_at_once_and_is_announced() {
    let f = fixture(true);
    let token = f.start().await;
    assert!(f.live(&token).await);
    assert!(f.live(&token).await);
    assert_eq!(f.store.lookups(), 1, "the second request is answered from the cache");
    f.sessions.end(&token.hash()).await.expect("end");
    assert!(!f.live(&token).await, "ended here at once, cache or not");
    assert_eq!(f.store.announced(), vec![SessionChange::Session(token.hash())], "and told to the other instances");
}

#[tokio::test]
async fn sec52_rotation_retires_the_old_token_and_keeps_the_proofs() {
    let f = fixture(true);
    let old = f.start().await;
    assert!(f.live(&old).await);
    let new = f.sessions.rotate(&old.hash()).await.expect("rotate");
    assert!(!f.live(&old).await, "the cached old token is refused at once");
    let (me, _) = f.sessions.authenticate(&new).await.expect("the new token works");
    assert!(me.session.password_at.is_some(), "proofs ride along");
    assert!(matches!(f.sessions.rotate(&old.hash()).await, Err(SessionError::Unauthenticated)));
}

#[tokio::test]
async fn sec54_sessions_are_listed_live_only_current_first_and_ended_by_their_public_id() {
    let f = fixture(false);
    let stale = f.start().await;
    f.clock.advance(31 * 60);
    let other = f.start().await;
    f.clock.advance(60);
    let current = f.start().await;
    let views = f.sessions.live_of(&ann(), &current.hash()).await.expect("list");
    assert_eq!(views.len(), 2, "the idle one is not shown");
    assert!(views[0].current);
    assert_eq!(views[0].id.len(), 16);
    assert!(!f.sessions.end_named(&ann(), &views[1].id[..15]).await.expect("short"), "a shorter prefix names none");
    assert!(!f.sessions.end_named(&AccountId::from_stored("a2"), &views[1].id).await.expect("other"), "nor another's");
    assert!(f.sessions.end_named(&ann(), &views[1].id).await.expect("end"));
    assert!(!f.live(&other).await);
    assert!(f.live(&current).await);
    drop(stale);
}

#[tokio::test]
async fn sec53_ending_all_but_one_keeps_it_and_announces_the_account() {
    let f = fixture(true);
    let keep = f.start().await;
    let a = f.start().await;
    let b = f.start().await;
    assert!(f.live(&a).await);
    assert_eq!(f.sessions.end_all_of(&ann(), Some(&keep.hash())).await.expect("end"), 2);
    assert!(!f.live(&a).await && !f.live(&b).await);
    assert!(f.live(&keep).await);
    assert_eq!(f.store.announced(), vec![SessionChange::Account(ann())]);
}

#[tokio::test]
async fn a_login_token_lives_five_minutes_and_five_tries_counted_with_the_throttles() {
    let f = fixture(false);
    let token = f.sessions.open_login(&ann()).await.expect("open");
    let id = token.hash();
    assert!(f.sessions.usable_login(&id).await.expect("read").is_some());
    for n in 1..=5 {
        let admitted = f.kit.throttles.admit_with(&[], Some(f.sessions.login_try(&id))).await.expect("admit");
        assert_eq!(admitted.token, TokenTried::Counted { failures: n });
    }
    let sixth = f.kit.throttles.admit_with(&[], Some(f.sessions.login_try(&id))).await.expect("admit");
    assert_eq!(sixth.token, TokenTried::Gone, "the sixth try finds it worn out");
    assert!(f.sessions.usable_login(&id).await.expect("read").is_none());

    let later = f.sessions.open_login(&ann()).await.expect("open");
    f.clock.advance(300);
    assert!(f.sessions.usable_login(&later.hash()).await.expect("read").is_none(), "5 minutes on, expired");
    let late = f.kit.throttles.admit_with(&[], Some(f.sessions.login_try(&later.hash()))).await.expect("admit");
    assert_eq!(late.token, TokenTried::Gone);
}

#[tokio::test]
async fn a_try_the_throttles_refuse_is_not_one_of_the_login_tokens() {
    let f = fixture(false);
    let token = f.sessions.open_login(&ann()).await.expect("open");
    let scope = [Scope::Factor(crate::factors::totp::TOTP_COUNTER, ann())];
    for _ in 0..BACKOFF_FROM {
        f.kit.throttles.fail_all(&scope).await.expect("fail");
    }
    let refused = f.kit.throttles.admit_with(&scope, Some(f.sessions.login_try(&token.hash()))).await.expect("admit");
    assert!(matches!(refused.verdict, Verdict::Wait { .. }));
    assert_eq!(refused.token, TokenTried::NotCounted);
    let record = f.store.login_token_record(&token.hash()).expect("still there");
    assert_eq!(record.failures, 0, "a try refused unevaluated is not one of the five");
}

#[tokio::test]
async fn sec37_a_login_token_becomes_one_session_only() {
    let f = fixture(false);
    let token = f.sessions.open_login(&ann()).await.expect("open");
    let counted = f.sessions.usable_login(&token.hash()).await.expect("read").expect("live");
    let none = ProofWrites::default();
    let (session, record) =
        f.sessions.finish_login(&counted, &none, &[], &ctx()).await.expect("finish").expect("first wins");
    assert_eq!(record.kind, SessionKind::Full);
    assert_eq!(record.password_at, Some(counted.created_at), "the password was proven when the token was made");
    assert_eq!(record.second_factor_at, Some(f.clock_now()));
    assert!(
        matches!(f.sessions.finish_login(&counted, &none, &[], &ctx()).await, Ok(Err(Finished::TokenGone))),
        "the second finds it spent"
    );
    assert_eq!(f.store.session_count(), 1);
    assert!(f.store.login_token_record(&token.hash()).is_none());
    assert!(f.live(&session).await);
}
