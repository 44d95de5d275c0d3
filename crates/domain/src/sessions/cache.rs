//! An instance-local memory of recently read sessions, so that the hottest
//! paths (the forward-auth check, every authenticated API request) need not
//! read the session, its account and the allow-list on every request.
//!
//! An entry is kept for at most `CACHE_SECS` and never past the session's
//! own absolute or idle deadline (by the domain clock), so expiry is judged
//! exactly as without the cache. What must take effect at once is evicted
//! instead of waited for: every path that ends or changes a session or its
//! account calls `Twostep::sessions_changed`, which evicts here and
//! announces the change to the other instances through the store
//! (PostgreSQL `NOTIFY`, a marker file beside a SQLite database). Whether
//! those announcements can be heard is the `Freshness` the wiring gives
//! the cache: while it cannot tell (a PostgreSQL listener that is down or
//! not yet connected), the cache is bypassed and every request reads the
//! database; when it can again, everything kept before is dropped.
//!
//! Keyed by the token's SHA-256 (`TokenHash`), never the token itself.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::ids::AccountId;
use crate::ports::Clock;
use crate::sessions::store::SessionLookup;
use crate::time::Timestamp;
use crate::token::TokenHash;

/// How long a session read from the database is answered from memory.
pub const CACHE_SECS: i64 = 5;
/// Sessions kept at most. Only live sessions are ever kept, so unknown
/// tokens cannot fill it; past the bound, expired entries go first, then
/// a quarter of the rest (`make_room`; a flood of live sessions costs reads, never memory).
pub const CACHE_MAX: usize = 16_384;

/// What ends or changes sessions, as evicted here and announced to others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// One session (sign-out, revocation, rotation, new proofs).
    Session(TokenHash),
    /// Every session of an account, and the account and allow-list they
    /// carry (disable, password, admin role, e-mail, sign out everywhere).
    Account(AccountId),
}

impl SessionChange {
    /// The form carried by a `NOTIFY` payload.
    pub fn to_payload(&self) -> String {
        match self {
            Self::Session(id) => format!("s:{}", id.as_str()),
            Self::Account(id) => format!("a:{}", id.as_str()),
        }
    }

    /// `None` for anything else (the receiver then drops everything).
    pub fn from_payload(payload: &str) -> Option<Self> {
        match payload.split_once(':')? {
            ("s", id) if !id.is_empty() => Some(Self::Session(TokenHash::from_stored(id))),
            ("a", id) if !id.is_empty() => Some(Self::Account(AccountId::from_stored(id))),
            _ => None,
        }
    }
}

/// Whether this instance hears about changes made elsewhere.
pub trait Freshness: Send + Sync {
    /// `None` while changes elsewhere might go unheard (the cache is then
    /// bypassed); otherwise a stamp that changes whenever something may
    /// have been missed or changed wholesale, upon which the cache starts
    /// over.
    fn stamp(&self) -> Option<u64>;
}

struct Entry {
    lookup: SessionLookup,
    /// The earliest of: read + `CACHE_SECS`, the session's absolute expiry,
    /// its idle deadline.
    until: Timestamp,
}

#[derive(Default)]
struct Inner {
    /// Boxed: a table sized for a busy minute stays small once it empties.
    entries: HashMap<TokenHash, Box<Entry>>,
    /// Moves on every eviction, so a read that began before a change
    /// cannot store what it read after the change was evicted.
    generation: u64,
    /// The freshness stamp the entries were kept under.
    seen: Option<u64>,
}

/// A read's permission to store what it reads; see `SessionCache::ticket`.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

pub struct SessionCache {
    clock: Arc<dyn Clock>,
    ttl: i64,
    capacity: usize,
    watch: OnceLock<Arc<dyn Freshness>>,
    inner: Mutex<Inner>,
}

impl SessionCache {
    /// Off until `watch` is given a freshness source: without one nobody
    /// could tell this instance about changes made elsewhere.
    pub fn new(clock: Arc<dyn Clock>, ttl: i64, capacity: usize) -> Self {
        Self { clock, ttl, capacity, watch: OnceLock::new(), inner: Mutex::default() }
    }

    /// Turns the cache on, hearing changes through `freshness`. Only the
    /// first call counts.
    pub fn watch(&self, freshness: Arc<dyn Freshness>) {
        let _ = self.watch.set(freshness);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current stamp, with the entries brought in line with it: `None`
    /// (bypass) drops everything, a new stamp too.
    fn sync(&self, inner: &mut Inner) -> Option<u64> {
        let stamp = self.watch.get().and_then(|w| w.stamp());
        if inner.seen != stamp {
            inner.entries.clear();
            inner.generation += 1;
            inner.seen = stamp;
        }
        stamp
    }

    /// The session kept for `id`, if it was read less than `CACHE_SECS` ago
    /// and its deadlines have not passed.
    pub fn get(&self, id: &TokenHash) -> Option<SessionLookup> {
        let now = self.clock.now();
        let mut inner = self.lock();
        self.sync(&mut inner)?;
        match inner.entries.get(id) {
            Some(e) if now < e.until => Some(e.lookup.clone()),
            Some(_) => {
                inner.entries.remove(id);
                None
            }
            None => None,
        }
    }

    /// Taken before reading the database; `put` stores the result only if
    /// nothing was evicted in between. `None` while the cache is bypassed.
    pub fn ticket(&self) -> Option<Ticket> {
        let mut inner = self.lock();
        self.sync(&mut inner)?;
        Some(Ticket(inner.generation))
    }

    /// Keeps a session just read (and judged live) until the earliest of
    /// `CACHE_SECS` from now and `live_until` (its expiry, its idle deadline).
    pub fn put(&self, ticket: Ticket, lookup: SessionLookup, live_until: Timestamp) {
        let now = self.clock.now();
        let until = now.plus_secs(self.ttl).min(live_until);
        if until <= now {
            return;
        }
        let mut inner = self.lock();
        if self.sync(&mut inner).is_none() || inner.generation != ticket.0 {
            return;
        }
        let id = lookup.session.id.clone();
        make_room(&mut inner.entries, &id, self.capacity, |e| now < e.until);
        inner.entries.insert(id, Box::new(Entry { lookup, until }));
    }

    /// Claims the once-a-minute last-seen write for a kept session: true
    /// (and the kept copy marked seen `now`) for one caller only, when the
    /// kept last-seen is at least `every` seconds old.
    pub fn claim_touch(&self, id: &TokenHash, now: Timestamp, every: i64) -> bool {
        let mut inner = self.lock();
        match inner.entries.get_mut(id) {
            Some(e) if now.secs() - e.lookup.session.last_seen_at.secs() >= every => {
                e.lookup.session.last_seen_at = now;
                true
            }
            _ => false,
        }
    }

    /// Forgets what `change` touches, here.
    pub fn evict(&self, change: &SessionChange) {
        let mut inner = self.lock();
        inner.generation += 1;
        match change {
            SessionChange::Session(id) => {
                inner.entries.remove(id);
            }
            SessionChange::Account(account) => inner.entries.retain(|_, e| &e.lookup.account.id != account),
        }
    }

    /// Drops what has aged out, and the room it took: an entry nobody asks
    /// for again would otherwise stay until the bound is reached. The
    /// server's sweep worker calls it every few seconds.
    pub fn sweep(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.entries.retain(|_, e| now < e.until);
        if inner.entries.capacity() > 4 * inner.entries.len().max(64) {
            inner.entries.shrink_to_fit();
        }
    }

    /// Forgets everything (an announcement that could not be read).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    /// Sessions kept now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room for `key` in a table bounded to `capacity` (a key already
/// kept is a refresh, no growth): what is no longer `live` goes first,
/// then, if the table is still full, a quarter of it in the table's own
/// order (which follows the keys' randomly seeded hashes, so the choice is
/// random). Emptying the whole table instead made
/// a working set just over the bound miss on every key at once, each time,
/// and held the lock while it freed every entry (at 1,000,000 accounts the
/// bench's 20,000 sessions against 16,384 entries: forward-auth at 44% of
/// `/healthz` against 108% with 10,000).
pub(crate) fn make_room<K: Eq + Hash, V>(
    table: &mut HashMap<K, V>,
    key: &K,
    capacity: usize,
    live: impl Fn(&V) -> bool,
) {
    if table.len() < capacity || table.contains_key(key) {
        return;
    }
    table.retain(|_, v| live(v));
    if table.len() >= capacity {
        let mut drop = (table.len() + 1 - capacity).max(capacity / 4);
        table.retain(|_, _| {
            let keep = drop == 0;
            drop = drop.saturating_sub(1);
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    use super::*;
    use crate::accounts::email::Email;
    use crate::accounts::store::AccountRecord;
    use crate::sessions::store::{SessionKind, SessionRecord};

    struct Manual(AtomicI64);
    impl Clock for Manual {
        fn now(&self) -> Timestamp {
            Timestamp::from_secs(self.0.load(Ordering::SeqCst))
        }
    }
    impl Manual {
        fn advance(&self, secs: i64) {
            self.0.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// A listener: 0 is "down".
    #[derive(Default)]
    struct Listener(AtomicU64);
    impl Freshness for Listener {
        fn stamp(&self) -> Option<u64> {
            Some(self.0.load(Ordering::SeqCst)).filter(|s| *s != 0)
        }
    }

    const START: i64 = 1_000_000;

    fn cache_with(capacity: usize) -> (SessionCache, Arc<Manual>, Arc<Listener>) {
        let clock = Arc::new(Manual(AtomicI64::new(START)));
        let cache = SessionCache::new(clock.clone(), CACHE_SECS, capacity);
        let listener = Arc::new(Listener(AtomicU64::new(1)));
        cache.watch(listener.clone());
        (cache, clock, listener)
    }

    fn cache() -> (SessionCache, Arc<Manual>, Arc<Listener>) {
        cache_with(CACHE_MAX)
    }

    fn lookup(id: &str, account: &str) -> SessionLookup {
        let at = Timestamp::from_secs(START);
        SessionLookup {
            session: SessionRecord {
                id: TokenHash::from_stored(id),
                account_id: AccountId::from_stored(account),
                kind: SessionKind::Full,
                created_at: at,
                last_seen_at: at,
                expires_at: at.plus_secs(3600),
                password_at: Some(at),
                second_factor_at: None,
                ip: "127.0.0.1".into(),
                user_agent: "test".into(),
            },
            account: AccountRecord {
                id: AccountId::from_stored(account),
                email: Email::from_stored(format!("{account}@example.com")),
                password_hash: String::new(),
                created_at: at,
                disabled_at: None,
                last_sign_in_at: None,
                email_verified_at: None,
                admin_since: None,
            },
            allowlist: Vec::new(),
        }
    }

    fn far() -> Timestamp {
        Timestamp::from_secs(START + 3600)
    }

    fn keep(cache: &SessionCache, id: &str, account: &str) {
        let t = cache.ticket().expect("ticket");
        cache.put(t, lookup(id, account), far());
    }

    fn hash(id: &str) -> TokenHash {
        TokenHash::from_stored(id)
    }

    #[test]
    fn a_kept_session_is_answered_until_the_ttl_then_read_again() {
        let (cache, clock, _) = cache();
        assert!(cache.get(&hash("s1")).is_none());
        keep(&cache, "s1", "a1");
        assert_eq!(cache.get(&hash("s1")).expect("kept").account.id.as_str(), "a1");
        clock.advance(CACHE_SECS - 1);
        assert!(cache.get(&hash("s1")).is_some());
        clock.advance(1);
        assert!(cache.get(&hash("s1")).is_none(), "gone at exactly CACHE_SECS");
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn an_entry_never_outlives_the_sessions_own_deadline() {
        let (cache, clock, _) = cache();
        let t = cache.ticket().expect("ticket");
        // The session's expiry (or idle deadline) is 2 s away: sooner than the TTL.
        cache.put(t, lookup("s1", "a1"), Timestamp::from_secs(START + 2));
        clock.advance(1);
        assert!(cache.get(&hash("s1")).is_some());
        clock.advance(1);
        assert!(cache.get(&hash("s1")).is_none(), "expired sessions are judged by the store read again");
        // Already past its deadline: not kept at all.
        let t = cache.ticket().expect("ticket");
        cache.put(t, lookup("s2", "a1"), clock.now());
        assert!(cache.is_empty());
    }

    #[test]
    fn eviction_of_a_session_or_an_account() {
        let (cache, _, _) = cache();
        keep(&cache, "s1", "a1");
        keep(&cache, "s2", "a1");
        keep(&cache, "s3", "a2");
        cache.evict(&SessionChange::Session(hash("s1")));
        assert!(cache.get(&hash("s1")).is_none());
        assert!(cache.get(&hash("s2")).is_some());
        cache.evict(&SessionChange::Account(AccountId::from_stored("a1")));
        assert!(cache.get(&hash("s2")).is_none(), "every session of the account goes");
        assert!(cache.get(&hash("s3")).is_some(), "other accounts' stay");
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_read_that_began_before_an_eviction_is_not_kept() {
        let (cache, _, _) = cache();
        let before = cache.ticket().expect("ticket");
        // Signed out elsewhere while the read was on its way.
        cache.evict(&SessionChange::Session(hash("s1")));
        cache.put(before, lookup("s1", "a1"), far());
        assert!(cache.get(&hash("s1")).is_none());
        // A read after the eviction is kept.
        keep(&cache, "s1", "a1");
        assert!(cache.get(&hash("s1")).is_some());
    }

    #[test]
    fn the_bound_holds_expired_entries_go_first() {
        let (cache, clock, _) = cache_with(3);
        keep(&cache, "s1", "a1");
        keep(&cache, "s2", "a1");
        clock.advance(CACHE_SECS);
        keep(&cache, "s3", "a1");
        // Full (s1 and s2 stale): they make room.
        keep(&cache, "s4", "a1");
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&hash("s3")).is_some() && cache.get(&hash("s4")).is_some());
        keep(&cache, "s5", "a1");
        // Full with live entries only: some make room rather than grow.
        keep(&cache, "s6", "a1");
        assert!(cache.len() <= 3, "{}", cache.len());
        assert!(cache.get(&hash("s6")).is_some());
        // Refreshing a kept session does not count as a new one.
        keep(&cache, "s6", "a1");
        assert!(cache.len() <= 3);
    }

    /// A table full of live entries loses a quarter to make room, not all
    /// of them: a working set a little over the bound still mostly hits.
    #[test]
    fn full_of_live_entries_a_quarter_makes_room() {
        let (cache, _, _) = cache_with(100);
        for i in 0..100 {
            keep(&cache, &format!("s{i}"), "a1");
        }
        assert_eq!(cache.len(), 100);
        keep(&cache, "new", "a2");
        assert_eq!(cache.len(), 76, "25 dropped, one added");
        assert!(cache.get(&hash("new")).is_some());
        let kept = (0..100).filter(|i| cache.get(&hash(&format!("s{i}"))).is_some()).count();
        assert_eq!(kept, 75);
        // Until it is full again, nothing more goes.
        for i in 0..24 {
            keep(&cache, &format!("t{i}"), "a3");
        }
        assert_eq!(cache.len(), 100);
    }

    #[test]
    fn make_room_drops_what_is_not_live_first() {
        let mut table: HashMap<u32, bool> = (0..10).map(|i| (i, i % 2 == 0)).collect();
        make_room(&mut table, &1, 10, |live| *live);
        assert_eq!(table.len(), 10, "a kept key is a refresh: nothing goes");
        make_room(&mut table, &99, 10, |live| *live);
        assert_eq!(table.len(), 5, "only the five not live went");
        assert!(table.values().all(|live| *live));
        let mut small: HashMap<u32, bool> = (0..3).map(|i| (i, true)).collect();
        make_room(&mut small, &99, 10, |_| false);
        assert_eq!(small.len(), 3, "under the bound nothing goes");
    }

    /// Eight threads released together keep 2,000 distinct live sessions
    /// in a cache of 100: the bound holds at every moment, and each
    /// thread's latest session is kept.
    #[test]
    fn the_bound_holds_under_a_burst_released_together() {
        let (cache, _, _) = cache_with(100);
        let gate = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (cache, gate) = (&cache, &gate);
                scope.spawn(move || {
                    gate.wait();
                    for i in 0..250 {
                        keep(cache, &format!("t{t}-{i}"), &format!("a{t}"));
                        assert!(cache.len() <= 100, "{}", cache.len());
                    }
                });
            }
        });
        assert!(cache.len() <= 100 && cache.len() >= 75, "{}", cache.len());
    }

    #[test]
    fn a_sweep_drops_what_aged_out_and_keeps_the_rest() {
        let (cache, clock, _) = cache();
        for i in 0..1000 {
            keep(&cache, &format!("old{i}"), "a1");
        }
        clock.advance(CACHE_SECS - 1);
        keep(&cache, "new", "a2");
        clock.advance(1);
        cache.sweep();
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&hash("new")).is_some());
    }

    #[test]
    fn without_freshness_or_with_the_listener_down_everything_is_read() {
        let clock = Arc::new(Manual(AtomicI64::new(START)));
        let unwatched = SessionCache::new(clock, CACHE_SECS, CACHE_MAX);
        assert!(unwatched.ticket().is_none(), "off until watched");

        let (cache, _, listener) = cache();
        keep(&cache, "s1", "a1");
        listener.0.store(0, Ordering::SeqCst);
        assert!(cache.get(&hash("s1")).is_none(), "bypassed while down");
        assert!(cache.ticket().is_none());
        // Back up (a new connection): what was kept before is gone, since
        // announcements made meanwhile were lost.
        listener.0.store(2, Ordering::SeqCst);
        assert!(cache.get(&hash("s1")).is_none());
        keep(&cache, "s1", "a1");
        assert!(cache.get(&hash("s1")).is_some());
    }

    #[test]
    fn a_new_stamp_starts_over_and_stops_reads_in_flight() {
        let (cache, _, listener) = cache();
        keep(&cache, "s1", "a1");
        let before = cache.ticket().expect("ticket");
        // Another process changed something (a SQLite marker bumped).
        listener.0.store(7, Ordering::SeqCst);
        assert!(cache.get(&hash("s1")).is_none());
        cache.put(before, lookup("s2", "a1"), far());
        assert!(cache.get(&hash("s2")).is_none());
    }

    #[test]
    fn the_last_seen_write_is_claimed_once_a_minute() {
        let (cache, clock, _) = cache();
        keep(&cache, "s1", "a1");
        let now = clock.now();
        assert!(!cache.claim_touch(&hash("s1"), now.plus_secs(59), 60));
        assert!(cache.claim_touch(&hash("s1"), now.plus_secs(60), 60));
        assert!(!cache.claim_touch(&hash("s1"), now.plus_secs(60), 60), "one caller only");
        assert_eq!(cache.get(&hash("s1")).expect("kept").session.last_seen_at, now.plus_secs(60));
        assert!(!cache.claim_touch(&hash("absent"), now.plus_secs(600), 60));
    }

    #[test]
    fn payloads_round_trip_and_junk_is_refused() {
        for c in [SessionChange::Session(hash("abc")), SessionChange::Account(AccountId::from_stored("id-1"))] {
            assert_eq!(SessionChange::from_payload(&c.to_payload()), Some(c));
        }
        for junk in ["", "s:", "x:1", "nonsense"] {
            assert_eq!(SessionChange::from_payload(junk), None, "{junk}");
        }
    }
}
