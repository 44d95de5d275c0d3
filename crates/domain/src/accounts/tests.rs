//! `Accounts` against in-memory stores: sign-up and its caps, the reset
//! link's single use and what a reset undoes, the password change, and the
//! operator's commands (SEC-05, SEC-06, SEC-14, SEC-36, SEC-42).

use std::sync::Arc;

use super::{AccountRules, Accounts};
use crate::accounts::password::PasswordPolicy;
use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, AuditKind};
use crate::error::{AccountError, CredentialError};
use crate::sessions::SignedIn;
use crate::sessions::service::Sessions;
use crate::sessions::store::SessionKind;
use crate::testing::credentials::MemCredentials;
use crate::testing::ctx;
use crate::testing::factors::Holders;
use crate::testing::kit::Kit;
use crate::testing::sessions::MemSessions;
use crate::testing::throttles::MemoryCounters;
use crate::token::Token;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase here";

struct Fixture {
    accounts: Accounts,
    store: Arc<MemSessions>,
    credentials: Arc<MemCredentials>,
    holders: Arc<Holders>,
    sessions: Arc<Sessions>,
    kit: Kit,
}

fn fixture() -> Fixture {
    let kit = Kit::new();
    let store = Arc::new(MemSessions::default());
    let credentials = Arc::new(MemCredentials::default());
    let holders = Arc::new(Holders::default());
    let notices = kit.notices(store.clone());
    let sessions = kit.sessions(store.clone(), false);
    let accounts = Accounts {
        store: store.clone(),
        credentials: credentials.clone(),
        factors: holders.clone(),
        allowances: Arc::new(MemoryCounters::default()),
        throttles: kit.throttles.clone(),
        guard: kit.guard(&notices),
        hasher: kit.hasher.clone(),
        sessions: sessions.clone(),
        auditor: kit.auditor.clone(),
        notices,
        keys: kit.keys.clone(),
        clock: kit.clock.clone(),
        rng: kit.rng.clone(),
        rules: AccountRules {
            password_policy: PasswordPolicy::default(),
            public_url: "https://id.example".into(),
            reset_link_secs: 1800,
            reset_mails_per_hour: 3,
            signups_per_source_per_hour: 5,
            signups_per_email_per_hour: 3,
        },
    };
    Fixture { accounts, store, credentials, holders, sessions, kit }
}

impl Fixture {
    /// A verified account with a session.
    async fn ann(&self) -> (AccountRecord, SignedIn) {
        let mut a = self.accounts.sign_up("ann@example.com", PASSWORD, Actor::Cli, &ctx()).await.expect("ann");
        crate::accounts::store::AccountStore::set_email_verified(self.store.as_ref(), &a.id, a.created_at)
            .await
            .expect("verified");
        a.email_verified_at = Some(a.created_at);
        (a.clone(), self.session_of(&a).await)
    }

    async fn session_of(&self, a: &AccountRecord) -> SignedIn {
        let (token, _) = self.sessions.start(&a.id, SessionKind::Full, None, None, &ctx()).await.expect("session");
        self.sessions.authenticate(&token).await.expect("live").0
    }

    /// The reset link's token from the latest mail.
    fn link_token(&self) -> String {
        let text = self.kit.texts().into_iter().rev().find(|t| t.contains("reset-password")).expect("reset mail");
        let at = text.find("token=").expect("token") + "token=".len();
        text[at..].split_whitespace().next().expect("token").to_owned()
    }
}

#[tokio::test]
async fn sec05_sign_up_checks_the_address_then_the_password_and_takes_an_address_once() {
    let f = fixture();
    let bad = f.accounts.sign_up("not an address", "short", Actor::User, &ctx()).await;
    assert!(matches!(bad, Err(AccountError::InvalidEmail(_))), "{bad:?}");
    for weak in ["eleven char", "twostep-twostep"] {
        let refused = f.accounts.sign_up("ann@example.com", weak, Actor::User, &ctx()).await;
        assert!(matches!(refused, Err(AccountError::WeakPassword(_))), "{weak}: {refused:?}");
    }
    let a = f.accounts.sign_up("Ann@Example.com", PASSWORD, Actor::User, &ctx()).await.expect("created");
    assert!(a.email_verified_at.is_none() && !a.password_hash.contains(PASSWORD));
    let again = f.accounts.sign_up("ann@example.com", PASSWORD, Actor::User, &ctx()).await;
    assert!(matches!(again, Err(AccountError::EmailTaken)));
    assert_eq!(f.kit.audited(AuditKind::AccountCreated), vec![true]);
}

#[tokio::test]
async fn sec36_sign_ups_are_capped_per_address_tried_but_not_for_the_operator() {
    let f = fixture();
    f.accounts.sign_up("ann@example.com", PASSWORD, Actor::User, &ctx()).await.expect("created");
    for _ in 0..2 {
        let taken = f.accounts.sign_up("ann@example.com", PASSWORD, Actor::User, &ctx()).await;
        assert!(matches!(taken, Err(AccountError::EmailTaken)));
    }
    let probe = f.accounts.sign_up("ann@example.com", PASSWORD, Actor::User, &ctx()).await;
    assert!(matches!(probe, Err(AccountError::Throttled { .. })), "the fourth try at one address: {probe:?}");
    f.accounts.sign_up("bob@example.com", PASSWORD, Actor::Cli, &ctx()).await.expect("the CLI is not capped");
    for n in 0..4 {
        let _ = f.accounts.sign_up(&format!("p{n}@example.com"), PASSWORD, Actor::User, &ctx()).await;
    }
    let sixth = f.accounts.sign_up("q@example.com", PASSWORD, Actor::User, &ctx()).await;
    assert!(matches!(sixth, Err(AccountError::Throttled { .. })), "five an hour from one source: {sixth:?}");
}

#[tokio::test]
async fn sec14_a_reset_for_an_unknown_address_does_nothing_and_a_known_one_mails_a_link() {
    let f = fixture();
    let (a, _) = f.ann().await;
    f.accounts.request_reset("nobody@example.com", &ctx()).await.expect("same answer");
    assert!(f.kit.mails.rows().is_empty() && f.credentials.resets() == 0);
    f.accounts.request_reset("ann@example.com", &ctx()).await.expect("sent");
    assert_eq!(f.credentials.resets(), 1);
    assert!(f.link_token().len() >= 43, "256 bits, base64url");
    assert!(f.kit.texts()[0].contains("https://id.example/reset-password?token="));
    assert_eq!(f.kit.audited(AuditKind::PasswordResetRequested), vec![true]);
    f.holders.set(&a.id, true);
    f.accounts.request_reset("ann@example.com", &ctx()).await.expect("sent");
    let texts = f.kit.texts();
    assert_ne!(
        texts[0].replace(&f.link_token(), ""),
        texts[1].replace(&f.link_token(), ""),
        "the mail says whether the second factor stays"
    );
}

#[tokio::test]
async fn sec36_reset_mails_are_capped_per_address() {
    let f = fixture();
    f.ann().await;
    for _ in 0..5 {
        f.accounts.request_reset("ann@example.com", &ctx()).await.expect("same answer");
    }
    assert_eq!(f.kit.mails.rows().len(), 3);
    assert_eq!(f.kit.audited(AuditKind::Throttled), vec![false, false]);
    f.kit.clock.advance(3600);
    f.accounts.request_reset("ann@example.com", &ctx()).await.expect("an hour on");
    assert_eq!(f.kit.mails.rows().len(), 4);
}

#[tokio::test]
async fn sec42_a_reset_link_works_once_ends_every_session_and_unlocks_the_password() {
    let f = fixture();
    let (a, me) = f.ann().await;
    let other = f.session_of(&a).await;
    for _ in 0..5 {
        let scope = crate::abuse::throttle::Scope::Password(a.id.clone());
        f.accounts.throttles.admit(&[scope]).await.expect("counted");
    }
    f.accounts.request_reset("ann@example.com", &ctx()).await.expect("sent");
    let token = f.link_token();
    assert!(f.accounts.reset_link_live(&token).await);
    let weak = f.accounts.reset_password(&token, "short", &ctx()).await;
    assert!(matches!(weak, Err(CredentialError::WeakPassword(_))));
    assert!(f.accounts.reset_link_live(&token).await, "a weak password does not spend the link");
    f.accounts.reset_password(&token, NEW_PASSWORD, &ctx()).await.expect("reset");
    assert!(matches!(
        f.accounts.reset_password(&token, NEW_PASSWORD, &ctx()).await,
        Err(CredentialError::InvalidResetLink)
    ));
    assert_eq!(f.store.session_count(), 0, "every session ended, this browser's too");
    assert!(f.store.session(&me.session.id).is_none() && f.store.session(&other.session.id).is_none());
    let scope = crate::abuse::throttle::Scope::Password(a.id.clone());
    let verdict = f.accounts.throttles.check(&scope).await.expect("read");
    assert_eq!(verdict, crate::abuse::throttle::Verdict::Allow, "the reset is the out-of-band unlock");
    assert_eq!(f.kit.audited(AuditKind::PasswordReset), vec![true]);
}

#[tokio::test]
async fn sec42_a_reset_link_expires_and_proves_the_address() {
    let f = fixture();
    let a = f.accounts.sign_up("bob@example.com", PASSWORD, Actor::Cli, &ctx()).await.expect("bob");
    f.accounts.request_reset("bob@example.com", &ctx()).await.expect("sent");
    let token = f.link_token();
    f.accounts.reset_password(&token, NEW_PASSWORD, &ctx()).await.expect("reset");
    assert!(f.accounts.by_id(&a.id).await.expect("bob").email_verified_at.is_some());
    f.accounts.request_reset("bob@example.com", &ctx()).await.expect("sent");
    let late = f.link_token();
    f.kit.clock.advance(1800);
    assert!(!f.accounts.reset_link_live(&late).await);
    assert!(matches!(
        f.accounts.reset_password(&late, NEW_PASSWORD, &ctx()).await,
        Err(CredentialError::InvalidResetLink)
    ));
}

#[tokio::test]
async fn sec06_a_change_needs_the_current_password_and_ends_the_other_sessions() {
    let f = fixture();
    let (a, me) = f.ann().await;
    let other = f.session_of(&a).await;
    let wrong = f.accounts.change_password(&me, "not my password at all", NEW_PASSWORD, &ctx()).await;
    assert!(matches!(wrong, Err(CredentialError::InvalidPassword)));
    let weak = f.accounts.change_password(&me, PASSWORD, "short", &ctx()).await;
    assert!(matches!(weak, Err(CredentialError::WeakPassword(_))));
    f.accounts.change_password(&me, PASSWORD, NEW_PASSWORD, &ctx()).await.expect("changed");
    assert!(f.store.session(&me.session.id).is_some(), "this session stays");
    assert!(f.store.session(&other.session.id).is_none(), "the other ends");
    assert!(f.kit.texts().iter().any(|t| t.contains("192.0.2.1")), "the owner is told, with where from");
    // The next request reads the account afresh.
    let me = SignedIn { account: f.accounts.by_id(&a.id).await.expect("ann"), ..me };
    let old = f.accounts.change_password(&me, PASSWORD, "yet another passphrase", &ctx()).await;
    assert!(matches!(old, Err(CredentialError::InvalidPassword)), "the old password is gone");
}

#[tokio::test]
async fn sec06_wrong_current_passwords_back_off() {
    let f = fixture();
    let (_, me) = f.ann().await;
    for _ in 0..5 {
        let _ = f.accounts.change_password(&me, "not my password at all", NEW_PASSWORD, &ctx()).await;
    }
    let next = f.accounts.change_password(&me, PASSWORD, NEW_PASSWORD, &ctx()).await;
    assert!(matches!(next, Err(CredentialError::Throttled { .. })), "{next:?}");
}

#[tokio::test]
async fn disabling_ends_every_session_and_enabling_restores_sign_in_only() {
    let f = fixture();
    let (a, me) = f.ann().await;
    let off = f.accounts.set_disabled("ann@example.com", true, Actor::Cli, &ctx()).await.expect("off");
    assert!(off.disabled_at.is_some());
    assert_eq!(f.store.session_count(), 0);
    let on = f.accounts.set_disabled("ann@example.com", false, Actor::Cli, &ctx()).await.expect("on");
    assert!(on.disabled_at.is_none());
    assert_eq!(f.kit.audited(AuditKind::AccountDisabled), vec![true]);
    assert!(f.sessions.authenticate(&Token::presented(me.session.id.as_str())).await.is_err());
    assert_eq!(f.accounts.by_id(&a.id).await.expect("ann").email, a.email);
    let none = f.accounts.set_disabled("nobody@example.com", true, Actor::Cli, &ctx()).await;
    assert!(matches!(none, Err(AccountError::NotFound)));
}
