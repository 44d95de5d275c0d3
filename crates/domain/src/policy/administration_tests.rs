//! `Administration` against in-memory stores: the role is read live and
//! needs 2FA (SEC-62), an admin never acts on their own account, and a
//! 2FA reset or a disable leaves nothing behind (SEC-53).

use std::sync::Arc;

use super::{Administration, By};
use crate::abuse::throttle::{Scope, Verdict};
use crate::accounts::store::{AccountRecord, AccountStore};
use crate::audit::{Actor, AuditKind};
use crate::ids::AccountId;
use crate::policy::admin::{AdminError, AuditSearch};
use crate::policy::store::AccountQuery;
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::sessions::store::SessionKind;
use crate::testing::credentials::MemCredentials;
use crate::testing::factors::Holders;
use crate::testing::kit::Kit;
use crate::testing::sessions::MemSessions;
use crate::testing::{account, ctx};
use crate::time::Timestamp;

struct Fixture {
    admin: Administration,
    store: Arc<MemSessions>,
    holders: Arc<Holders>,
    kit: Kit,
    boss: SignedIn,
    bob: AccountRecord,
}

fn fixture() -> Fixture {
    let kit = Kit::new();
    let mut boss = account("a1", "boss@example.com");
    boss.admin_since = Some(Timestamp::from_secs(0));
    let bob = account("b1", "bob@example.com");
    let store = Arc::new(MemSessions::with_account(boss.clone()));
    store.accounts.lock().expect("lock").insert("b1".into(), bob.clone());
    let holders = Arc::new(Holders::default());
    holders.set(&boss.id, true);
    let admin = Administration {
        store: store.clone(),
        accounts: store.clone(),
        factors: holders.clone(),
        credentials: Arc::new(MemCredentials::default()),
        throttles: kit.throttles.clone(),
        sessions: kit.sessions(store.clone(), false),
        auditor: kit.auditor.clone(),
        notices: kit.notices(store.clone()),
        clock: kit.clock.clone(),
    };
    let session = crate::sessions::store::SessionRecord {
        id: crate::token::TokenHash::from_stored("boss-session"),
        account_id: boss.id.clone(),
        kind: SessionKind::Full,
        created_at: Timestamp::from_secs(1_000_000),
        last_seen_at: Timestamp::from_secs(1_000_000),
        expires_at: Timestamp::from_secs(1_040_000),
        password_at: None,
        second_factor_at: None,
        ip: String::new(),
        user_agent: String::new(),
    };
    Fixture { admin, store, holders, kit, boss: SignedIn { session, account: boss }, bob }
}

impl Fixture {
    async fn bob_sessions(&self, n: usize) {
        for _ in 0..n {
            self.admin.sessions.start(&self.bob.id, SessionKind::Full, None, None, &ctx()).await.expect("session");
        }
    }

    fn kinds(&self) -> Vec<String> {
        self.kit.audit.kinds().into_iter().map(|(k, _)| k).collect()
    }
}

#[tokio::test]
async fn sec62_the_role_is_read_live_and_needs_two_factor() {
    let f = fixture();
    f.admin.check(&f.boss).await.expect("an admin with 2FA");
    f.holders.set(&f.boss.account.id, false);
    assert!(matches!(f.admin.check(&f.boss).await, Err(AdminError::TwoFactorRequired)));
    f.holders.set(&f.boss.account.id, true);
    let revoked = f.admin.set_admin(&f.boss.account, false, Actor::Cli, &ctx()).await.expect("revoked");
    assert!(revoked.admin_since.is_none());
    assert!(
        matches!(f.admin.check(&f.boss).await, Err(AdminError::NotAdmin)),
        "the session still carries the role; the check reads the row"
    );
    assert!(f.store.announced().contains(&SessionChange::Account(f.boss.account.id.clone())));
}

#[tokio::test]
async fn granting_twice_keeps_the_first_date_and_audits_once() {
    let f = fixture();
    let first = f.admin.set_admin(&f.bob, true, Actor::Cli, &ctx()).await.expect("granted");
    let again = f.admin.set_admin(&first, true, Actor::Cli, &ctx()).await.expect("again");
    assert_eq!(again.admin_since, first.admin_since);
    assert_eq!(f.kinds(), vec![AuditKind::AdminGranted.as_str().to_owned()]);
}

#[tokio::test]
async fn an_admin_never_targets_their_own_account_nor_a_missing_one() {
    let f = fixture();
    let own = f.admin.target(&f.boss, &f.boss.account.id).await;
    assert!(matches!(own, Err(AdminError::OwnAccount)));
    let missing = f.admin.target(&f.boss, &AccountId::from_stored("nobody")).await;
    assert!(matches!(missing, Err(AdminError::NotFound)));
    assert_eq!(f.admin.target(&f.boss, &f.bob.id).await.expect("bob").email, f.bob.email);
}

#[tokio::test]
async fn sec53_a_two_factor_reset_leaves_no_factor_session_or_factor_lock_but_keeps_the_password_counter() {
    let f = fixture();
    f.holders.set(&f.bob.id, true);
    f.bob_sessions(2).await;
    let app = Scope::Factor(crate::factors::totp::TOTP_COUNTER, f.bob.id.clone());
    let locked = [app.clone(), Scope::Password(f.bob.id.clone())];
    for _ in 0..6 {
        f.admin.throttles.admit(&locked).await.expect("counted");
    }
    f.admin.wipe_second_factors(&f.bob, By::admin(&f.boss), &ctx()).await.expect("wiped");
    assert!(!f.holders.has(&f.bob.id));
    assert_eq!(f.store.session_count(), 0);
    assert_eq!(f.admin.throttles.check(&app).await.expect("read"), Verdict::Allow);
    assert_ne!(f.admin.throttles.check(&Scope::Password(f.bob.id.clone())).await.expect("read"), Verdict::Allow);
    let entry = f.kit.audit.0.lock().expect("lock").last().cloned().expect("audited");
    assert_eq!(entry.details, "by admin a1; factors removed: 1; sessions ended: 2");
    assert_eq!(f.kit.mails.rows().len(), 1, "the user is told");
}

#[tokio::test]
async fn disabling_ends_sessions_once_and_a_repeat_does_nothing() {
    let f = fixture();
    f.bob_sessions(3).await;
    f.admin.apply_disabled(&f.bob, true, By::operator(Actor::Cli), &ctx()).await.expect("disabled");
    assert_eq!(f.store.session_count(), 0);
    let bob = f.store.account_by_id(&f.bob.id).await.expect("read").expect("bob");
    f.admin.apply_disabled(&bob, true, By::operator(Actor::Cli), &ctx()).await.expect("again");
    assert_eq!(f.kinds(), vec![AuditKind::AccountDisabled.as_str().to_owned()], "audited once");
    let entry = f.kit.audit.0.lock().expect("lock").last().cloned().expect("audited");
    assert_eq!(entry.details, "by the operator; sessions ended: 3");
}

#[tokio::test]
async fn the_audit_search_checks_its_bounds_and_finds_by_address_or_nothing() {
    let f = fixture();
    f.admin.apply_disabled(&f.bob, true, By::admin(&f.boss), &ctx()).await.expect("an entry for bob");
    let bad = f.admin.audit(&f.boss, &AuditSearch { since: Some("yesterday"), limit: 10, ..Default::default() }).await;
    assert!(matches!(bad, Err(AdminError::InvalidFilter(_))));
    let search = |user| AuditSearch { user: Some(user), limit: 10, ..Default::default() };
    assert_eq!(f.admin.audit(&f.boss, &search("bob@example.com")).await.expect("found").len(), 1);
    let none = f.admin.audit(&f.boss, &search("x@example.com")).await.expect("nothing");
    assert!(none.is_empty(), "an address without an account matches nothing");
    let query = AccountQuery { text: Some("bob".into()), two_factor: None, limit: 10 };
    assert_eq!(f.admin.users(&f.boss, &query).await.expect("listed").len(), 1);
}
