//! The outbox and notices against in-memory stores and scripted providers:
//! sealing at rest (§2.2), retries with backoff until a message is
//! pointless, one send per message across workers, and the hand-back of
//! leases on a drain (issue 19).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Outbox, Senders, backoff_secs};
use crate::crypto::{Keyring, MasterKey};
use crate::notify::notice::{Notice, mail};
use crate::notify::notices::Notices;
use crate::notify::store::{Channel, Delivered, DeliveryError, Outbound, OutboxStatus, Sender};
use crate::testing::outbox::MemOutbox;
use crate::testing::sessions::MemSessions;
use crate::testing::{CountingRng, ManualClock, account, ctx};

/// A provider that answers from a script (then succeeds), or never answers.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<Delivered, DeliveryError>>>,
    sent: Mutex<Vec<Outbound>>,
    hang: bool,
}

impl Scripted {
    fn answering(answers: Vec<Result<Delivered, DeliveryError>>) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers.into()), ..Self::default() })
    }

    fn sent(&self) -> Vec<Outbound> {
        self.sent.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Sender for Scripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        self.sent.lock().expect("lock").push(message.clone());
        let next = self.answers.lock().expect("lock").pop_front();
        next.unwrap_or_else(|| Ok(Delivered { provider_id: Some("p-1".into()) }))
    }
}

struct Fixture {
    outbox: Arc<Outbox>,
    store: Arc<MemOutbox>,
    clock: Arc<ManualClock>,
    drain: tokio::sync::watch::Sender<bool>,
}

fn fixture() -> Fixture {
    fixture_on(Arc::new(MemOutbox::default()))
}

fn fixture_on(store: Arc<MemOutbox>) -> Fixture {
    let clock = ManualClock::at(1_000_000);
    let drain = tokio::sync::watch::Sender::new(false);
    let keys = Arc::new(Keyring::new(&MasterKey::from_bytes([3; 32])));
    let outbox =
        Arc::new(Outbox::new(store.clone(), keys, clock.clone(), Arc::new(CountingRng::default()), drain.subscribe()));
    Fixture { outbox, store, clock, drain }
}

fn code_mail() -> Outbound {
    mail("ann@example.com", "Your code", "Your code is 424242.", "small print", Some("424242".into()))
}

fn email(sender: &Arc<Scripted>) -> Senders {
    Senders { email: Some(sender.clone()), phone: None }
}

impl Fixture {
    async fn queue(&self, lifetime: i64) -> String {
        use crate::ports::Clock;
        let expires = self.clock.now().plus_secs(lifetime);
        self.outbox.enqueue(None, &code_mail(), expires).await.expect("queued")
    }

    fn row(&self, id: &str) -> crate::notify::store::OutboxRecord {
        self.store.rows().into_iter().find(|r| r.id == id).expect("row")
    }
}

#[test]
fn backoff_doubles_then_caps_at_a_minute() {
    let waits: Vec<i64> = (1..=9).map(backoff_secs).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(backoff_secs(0), 1);
    assert_eq!(backoff_secs(i64::MAX), 60);
}

#[tokio::test]
async fn a_queued_message_is_sealed_at_rest_opens_back_and_wakes_the_worker() {
    let f = fixture();
    let id = f.queue(600).await;
    let row = f.row(&id);
    let stored = String::from_utf8_lossy(&row.payload_sealed).into_owned();
    assert!(!stored.contains("424242") && !stored.contains("ann@example.com"), "nothing readable at rest");
    let opened = f.outbox.open(&row).expect("opens");
    assert_eq!(
        (opened.to.as_str(), opened.code.as_deref(), opened.id.as_str()),
        ("ann@example.com", Some("424242"), id.as_str())
    );
    tokio::time::timeout(Duration::from_secs(1), f.outbox.signal().notified()).await.expect("the worker is woken");
    let mut moved = row.clone();
    moved.id = "another-row".into();
    assert!(f.outbox.open(&moved).is_err(), "a payload moved to another row does not open");
}

#[tokio::test]
async fn a_delivered_message_is_finished_with_the_providers_id() {
    let f = fixture();
    let id = f.queue(600).await;
    let sender = Scripted::answering(vec![]);
    assert_eq!(f.outbox.deliver_due(&email(&sender)).await.expect("pass"), 1);
    let row = f.row(&id);
    assert_eq!((row.status, row.attempts, row.provider_id.as_deref()), (OutboxStatus::Sent, 1, Some("p-1")));
    assert_eq!(sender.sent()[0].code.as_deref(), Some("424242"));
    assert_eq!(f.outbox.deliver_due(&email(&sender)).await.expect("pass"), 0, "never sent twice");
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff_until_the_message_is_pointless() {
    let f = fixture();
    let id = f.queue(5).await;
    let down = || Err(DeliveryError::Transient("connection refused".into()));
    let sender = Scripted::answering(vec![down(), down(), down()]);
    f.outbox.deliver_due(&email(&sender)).await.expect("pass");
    assert_eq!((f.row(&id).status, f.row(&id).attempts), (OutboxStatus::Pending, 1));
    assert_eq!(f.outbox.deliver_due(&email(&sender)).await.expect("pass"), 0, "not due before its backoff");
    f.clock.advance(1);
    f.outbox.deliver_due(&email(&sender)).await.expect("pass");
    assert_eq!(f.row(&id).attempts, 2);
    f.clock.advance(2);
    f.outbox.deliver_due(&email(&sender)).await.expect("pass");
    let row = f.row(&id);
    assert_eq!(row.status, OutboxStatus::Failed, "the next try (4 s on) would be past its 5 s life");
    assert_eq!(row.last_error.as_deref(), Some("connection refused"));
    assert_eq!(sender.sent().len(), 3);
}

#[tokio::test]
async fn a_permanent_refusal_an_expired_message_and_a_missing_provider_fail_at_once() {
    let f = fixture();
    let refused = f.queue(600).await;
    let sender = Scripted::answering(vec![Err(DeliveryError::Permanent("bad address".into()))]);
    f.outbox.deliver_due(&email(&sender)).await.expect("pass");
    assert_eq!(f.row(&refused).status, OutboxStatus::Failed);

    let late = f.queue(10).await;
    f.clock.advance(10);
    f.outbox.deliver_due(&email(&sender)).await.expect("pass");
    assert_eq!(f.row(&late).status, OutboxStatus::Failed);
    assert_eq!(sender.sent().len(), 1, "the expired message was never handed over");

    let nowhere = f.queue(600).await;
    f.outbox.deliver_due(&Senders::default()).await.expect("pass");
    assert_eq!(f.row(&nowhere).last_error.as_deref(), Some("no provider configured"));
}

#[tokio::test]
async fn two_workers_sharing_the_table_send_each_message_once() {
    let a = fixture();
    let b = fixture_on(a.store.clone());
    for _ in 0..20 {
        a.queue(600).await;
    }
    let sender = Scripted::answering(vec![]);
    let senders = email(&sender);
    let (x, y) = tokio::join!(a.outbox.deliver_due(&senders), b.outbox.deliver_due(&senders));
    assert_eq!(x.expect("a") + y.expect("b"), 20);
    assert_eq!(sender.sent().len(), 20);
    assert!(a.store.rows().iter().all(|r| r.status == OutboxStatus::Sent));
}

#[tokio::test]
async fn a_drain_hands_back_the_lease_of_a_send_under_way() {
    let f = fixture();
    let id = f.queue(600).await;
    let hung = Arc::new(Scripted { hang: true, ..Scripted::default() });
    let outbox = f.outbox.clone();
    let senders = email(&hung);
    let pass = tokio::spawn(async move { outbox.deliver_due(&senders).await });
    while f.row(&id).locked_until.is_none() {
        tokio::task::yield_now().await;
    }
    f.drain.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), pass).await.expect("the pass stops").expect("join").expect("ok");
    let row = f.row(&id);
    assert_eq!((row.status, row.locked_until), (OutboxStatus::Pending, None), "free for another instance at once");
}

#[tokio::test]
async fn sec48_a_notice_goes_to_a_verified_address_only_but_a_reset_link_always() {
    let f = fixture();
    let accounts = Arc::new(MemSessions::with_account(account("a1", "ann@example.com")));
    let mut unverified = account("a2", "bob@example.com");
    unverified.email_verified_at = None;
    crate::accounts::store::AccountStore::insert_account(accounts.as_ref(), &unverified).await.expect("bob");
    let notices = Notices::new(accounts, f.outbox.clone(), f.clock.clone());
    let ann = crate::ids::AccountId::from_stored("a1");
    let bob = crate::ids::AccountId::from_stored("a2");
    notices.notify(&ann, Notice::PasswordChanged, &ctx()).await;
    notices.notify(&bob, Notice::PasswordChanged, &ctx()).await;
    assert_eq!(f.store.rows().len(), 1, "nothing to an address never proven");
    let row = &f.store.rows()[0];
    let sent = f.outbox.open(row).expect("opens");
    assert_eq!((sent.to.as_str(), sent.channel), ("ann@example.com", Channel::Email));
    assert!(sent.text.contains("From address: 192.0.2.1") && sent.text.contains("Client: Mozilla"));
    assert!(sent.code.is_none(), "a notice carries no code");
    assert_eq!(row.expires_at.secs() - row.created_at.secs(), 24 * 3600);
    notices.notify(&bob, Notice::ResetLink { two_factor: false, url: "https://x.example/r".into() }, &ctx()).await;
    assert_eq!(f.store.rows().len(), 2, "a reset link goes to whoever holds the address");
}
