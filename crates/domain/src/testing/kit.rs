//! The parts every service's fixture shares: a clock at a fixed start,
//! repeatable randomness, an audit log and an outbox read back in tests,
//! cheap Argon2id, and the services built from them over the fakes a test
//! chooses.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::abuse::throttles::Throttles;
use crate::accounts::hasher::Hasher;
use crate::accounts::password::{HashCost, PasswordHashing};
use crate::accounts::password_guard::PasswordGuard;
use crate::accounts::store::AccountStore;
use crate::audit::Auditor;
use crate::crypto::{Keyring, MasterKey};
use crate::notify::notices::Notices;
use crate::notify::outbox::Outbox;
use crate::sessions::cache::{Freshness, SessionCache};
use crate::sessions::service::{Lifetimes, Sessions};
use crate::sessions::store::SessionStore;
use crate::testing::audit::MemAudit;
use crate::testing::outbox::MemOutbox;
use crate::testing::throttles::MemoryCounters;
use crate::testing::{CountingRng, ManualClock};

/// §2.6 and §2.11 as shipped.
pub const LIFETIMES: Lifetimes =
    Lifetimes { idle_secs: 30 * 60, absolute_secs: 12 * 3600, login_token_secs: 300, login_token_max_failures: 5 };

/// A listener that always hears the other instances: the cache is on.
pub struct Hearing(pub AtomicU64);

impl Freshness for Hearing {
    fn stamp(&self) -> Option<u64> {
        Some(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

pub struct Kit {
    pub clock: Arc<ManualClock>,
    pub rng: Arc<CountingRng>,
    pub keys: Arc<Keyring>,
    pub audit: Arc<MemAudit>,
    pub auditor: Arc<Auditor>,
    pub mails: Arc<MemOutbox>,
    pub outbox: Arc<Outbox>,
    pub hasher: Arc<Hasher>,
    pub throttles: Arc<Throttles>,
    /// The counters under `throttles`.
    pub counters: Arc<MemoryCounters>,
    /// Held, never sent: dropping it would read to the outbox as a drain.
    _drain: tokio::sync::watch::Sender<bool>,
}

impl Default for Kit {
    fn default() -> Self {
        Self::new()
    }
}

impl Kit {
    pub fn new() -> Self {
        let clock = ManualClock::at(1_000_000);
        let rng = Arc::new(CountingRng::default());
        let keys = Arc::new(Keyring::new(&MasterKey::from_bytes([7; 32])));
        let audit = Arc::new(MemAudit::default());
        let auditor = Arc::new(Auditor::new(audit.clone(), clock.clone()));
        let mails = Arc::new(MemOutbox::default());
        let drain = tokio::sync::watch::Sender::new(false);
        let outbox = Arc::new(Outbox::new(mails.clone(), keys.clone(), clock.clone(), rng.clone(), drain.subscribe()));
        let cost = HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let hashing = PasswordHashing::new(cost, rng.as_ref()).expect("hashing");
        let hasher = Arc::new(Hasher::new(Arc::new(hashing), rng.clone(), 2));
        let counters = Arc::new(MemoryCounters::default());
        let throttles = Arc::new(Throttles::new(counters.clone(), clock.clone()));
        Self { clock, rng, keys, audit, auditor, mails, outbox, hasher, throttles, counters, _drain: drain }
    }

    /// Notices mailed to the addresses `accounts` holds.
    pub fn notices(&self, accounts: Arc<dyn AccountStore>) -> Arc<Notices> {
        Arc::new(Notices::new(accounts, self.outbox.clone(), self.clock.clone()))
    }

    /// Sessions over `store`, with the cache on when `cached`.
    pub fn sessions(&self, store: Arc<dyn SessionStore>, cached: bool) -> Arc<Sessions> {
        let cache = Arc::new(SessionCache::new(self.clock.clone(), 5, 100));
        if cached {
            cache.watch(Arc::new(Hearing(AtomicU64::new(1))));
        }
        Arc::new(Sessions::new(store, self.clock.clone(), self.rng.clone(), LIFETIMES, cache))
    }

    pub fn guard(&self, notices: &Arc<Notices>) -> Arc<PasswordGuard> {
        Arc::new(PasswordGuard {
            throttles: self.throttles.clone(),
            hasher: self.hasher.clone(),
            auditor: self.auditor.clone(),
            notices: notices.clone(),
        })
    }

    /// The subjects of the mails queued, oldest first.
    pub fn subjects(&self) -> Vec<String> {
        self.mails.rows().iter().map(|r| self.outbox.open(r).expect("opens").subject).collect()
    }

    /// The plain-text bodies of the mails queued, oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.mails.rows().iter().map(|r| self.outbox.open(r).expect("opens").text).collect()
    }

    /// Whether each entry of `kind` succeeded, oldest first.
    pub fn audited(&self, kind: crate::audit::AuditKind) -> Vec<bool> {
        self.audit.kinds().into_iter().filter(|(k, _)| k == kind.as_str()).map(|(_, ok)| ok).collect()
    }
}
