//! `Allowlists` against in-memory stores (SEC-61): the list decides at
//! every request, a session used from outside ends, refusals are told to
//! the owner at most hourly, and saving keeps what did not change.

use std::sync::Arc;

use super::Allowlists;
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::error::SessionError;
use crate::ids::AccountId;
use crate::policy::ip_range::IpRange;
use crate::policy::store::AllowlistRecord;
use crate::sessions::store::SessionKind;
use crate::testing::kit::Kit;
use crate::testing::sessions::MemSessions;
use crate::testing::{account, ctx};

struct Fixture {
    lists: Allowlists,
    store: Arc<MemSessions>,
    kit: Kit,
}

fn fixture() -> Fixture {
    let kit = Kit::new();
    let store = Arc::new(MemSessions::with_account(account("a1", "ann@example.com")));
    let lists = Allowlists {
        store: store.clone(),
        sessions: kit.sessions(store.clone(), true),
        auditor: kit.auditor.clone(),
        notices: kit.notices(store.clone()),
        clock: kit.clock.clone(),
    };
    Fixture { lists, store, kit }
}

fn ann() -> AccountId {
    AccountId::from_stored("a1")
}

fn wanted(ranges: &[&str]) -> Vec<(IpRange, String)> {
    ranges.iter().map(|r| (IpRange::parse_any(r).expect("range"), format!("label {r}"))).collect()
}

impl Fixture {
    async fn set(&self, ranges: &[&str]) -> Vec<AllowlistRecord> {
        let old = self.lists.records(&ann()).await.expect("read");
        self.lists.save(&ann(), &wanted(ranges), &old, &ctx()).await.expect("saved")
    }

    fn audited(&self, kind: AuditKind) -> usize {
        self.kit.audited(kind).len()
    }
}

#[tokio::test]
async fn sec61_an_empty_list_allows_every_address_and_a_list_only_its_ranges() {
    let f = fixture();
    assert!(f.lists.allowed(&ann(), "203.0.113.9").await.expect("read"));
    f.set(&["192.0.2.0/24", "2001:db8::/48"]).await;
    assert!(f.lists.allowed(&ann(), "192.0.2.77").await.expect("read"));
    assert!(f.lists.allowed(&ann(), "2001:db8::1").await.expect("read"));
    assert!(!f.lists.allowed(&ann(), "203.0.113.9").await.expect("read"));
}

#[tokio::test]
async fn sec61_a_session_used_from_outside_its_list_ends_at_once_even_when_cached() {
    let f = fixture();
    let (token, _) = f.lists.sessions.start(&ann(), SessionKind::Full, None, None, &ctx()).await.expect("session");
    f.lists.authenticate_from(&token, &ctx()).await.expect("no list yet");
    f.set(&["198.51.100.0/24"]).await;
    let refused = f.lists.authenticate_from(&token, &ctx()).await;
    assert!(matches!(refused, Err(SessionError::IpNotAllowed)), "the cached session saw the new list: {refused:?}");
    assert_eq!(f.store.session_count(), 0, "and the session is gone");
    let inside = crate::audit::RequestContext { ip: "198.51.100.5".into(), ..ctx() };
    assert!(matches!(f.lists.authenticate_from(&token, &inside).await, Err(SessionError::Unauthenticated)));
    assert_eq!(f.audited(AuditKind::SessionOutsideAllowlist), 1);
    assert_eq!(
        f.kit.subjects().last().map(String::as_str),
        Some("A session was used from an unlisted address and ended")
    );
}

#[tokio::test]
async fn a_refused_sign_in_from_outside_is_mailed_at_most_hourly() {
    let f = fixture();
    let a = account("a1", "ann@example.com");
    f.lists.refused_outside(&a, true, &ctx()).await;
    f.lists.refused_outside(&a, false, &ctx()).await;
    assert_eq!(f.kit.mails.rows().len(), 1, "two refusals, one mail");
    assert_eq!(f.audited(AuditKind::SignInOutsideAllowlist), 2, "both audited");
    f.kit.clock.advance(3601);
    let second_step = AuditEvent::user(AuditKind::SignInOutsideAllowlist, &a.id).failed().details("second step");
    f.lists.auditor.record(second_step, &ctx()).await;
    f.lists.refused_outside(&a, false, &ctx()).await;
    assert_eq!(f.kit.mails.rows().len(), 2, "an hour on, and a second-step refusal does not count as told");
}

#[tokio::test]
async fn saving_keeps_the_dates_of_kept_entries_and_an_unchanged_list_does_nothing() {
    let f = fixture();
    let first = f.set(&["192.0.2.0/24"]).await;
    f.kit.clock.advance(600);
    let second = f.set(&["192.0.2.0/24", "198.51.100.7"]).await;
    assert_eq!(second[0].created_at, first[0].created_at, "the kept entry keeps its date");
    assert_eq!(second[1].created_at.secs(), first[0].created_at.secs() + 600);
    assert_eq!(second[1].cidr, "198.51.100.7", "a single address is kept as one");
    let mails = f.kit.mails.rows().len();
    f.set(&["192.0.2.0/24", "198.51.100.7"]).await;
    assert_eq!((f.kit.mails.rows().len(), f.audited(AuditKind::AllowlistChanged)), (mails, 2), "nothing changed");
}

#[tokio::test]
async fn the_operator_clears_a_list_and_the_owner_is_told() {
    let f = fixture();
    assert_eq!(f.lists.clear(&ann(), Actor::Cli, &ctx()).await.expect("none"), 0);
    f.set(&["192.0.2.0/24", "198.51.100.0/24"]).await;
    assert_eq!(f.lists.clear(&ann(), Actor::Cli, &ctx()).await.expect("cleared"), 2);
    assert!(f.lists.allowed(&ann(), "203.0.113.9").await.expect("read"));
    let last = f.kit.audit.0.lock().expect("lock").last().cloned().expect("entry");
    assert_eq!((last.actor.as_str(), last.details.as_str()), ("cli", "cleared 2 entries by cli"));
}
