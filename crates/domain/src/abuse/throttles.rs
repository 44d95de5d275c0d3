//! `Throttles`: the narrow service over `ThrottleStore` that every guessing
//! limit goes through (§2.5). It holds only its store and the clock, so its
//! rules are tested here against an in-memory store.

use std::sync::{Arc, Mutex, PoisonError};

use crate::abuse::store::ThrottleStore;
use crate::abuse::throttle::{Admission, Counter, Scope, TokenTry, Verdict, combine, verdict};
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::meters;
use crate::ports::Clock;

pub(crate) struct Throttles {
    store: Arc<dyn ThrottleStore>,
    clock: Arc<dyn Clock>,
}

impl Throttles {
    pub fn new(store: Arc<dyn ThrottleStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Admits one attempt against every scope, or none: judged by each
    /// scope's rule and counted in the same atomic step, so a burst on any
    /// number of instances is admitted no more often than one request at a
    /// time would be (the attempt counts as a failure until it proves right
    /// and is reset or refunded). A storage failure fails closed.
    pub async fn admit(&self, scopes: &[Scope]) -> Result<Admission, StoreError> {
        self.admit_with(scopes, None).await
    }

    /// `admit`, counting a login token's try in the same atomic step.
    pub async fn admit_with(&self, scopes: &[Scope], token: Option<TokenTry<'_>>) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let keyed: Vec<(String, i64)> = scopes.iter().map(|s| (s.key(), s.window_secs())).collect();
        // Which scopes refused, for the operator's counters. The store may
        // judge more than once (a retried transaction): the last say counts.
        let refusing = Mutex::new(Vec::new());
        let judge = |counters: &[Counter]| {
            let verdicts: Vec<Verdict> = scopes.iter().zip(counters).map(|(s, c)| s.judge(*c, now)).collect();
            if let Ok(mut r) = refusing.lock() {
                *r = scopes
                    .iter()
                    .zip(&verdicts)
                    .filter(|(_, v)| **v != Verdict::Allow)
                    .map(|(s, _)| s.kind())
                    .collect();
            }
            combine(verdicts)
        };
        let admission = self.store.admit(&keyed, token, now, &judge).await?;
        if admission.verdict != Verdict::Allow {
            for kind in refusing.into_inner().unwrap_or_else(PoisonError::into_inner) {
                meters::throttle_refusal(kind);
            }
        }
        Ok(admission)
    }

    /// The verdict for one scope without counting anything.
    pub async fn check(&self, scope: &Scope) -> Result<Verdict, StoreError> {
        let counter = self.store.counter(&scope.key()).await?;
        Ok(verdict(counter, self.clock.now(), scope.lockable()))
    }

    /// The verdicts for several scopes, in their order, from one read.
    pub async fn verdicts(&self, scopes: &[Scope]) -> Result<Vec<Verdict>, StoreError> {
        let keys: Vec<String> = scopes.iter().map(Scope::key).collect();
        let found = self.store.counters(&keys).await?;
        Ok(self.counted(scopes, &found))
    }

    /// The verdicts for `scopes` from counters already read (absent: none).
    pub fn counted(&self, scopes: &[Scope], found: &[(String, Counter)]) -> Vec<Verdict> {
        let now = self.clock.now();
        scopes
            .iter()
            .map(|scope| {
                let key = scope.key();
                let counter = found.iter().find(|(k, _)| *k == key).map(|(_, c)| *c);
                verdict(counter, now, scope.lockable())
            })
            .collect()
    }

    /// Counts a failure in each scope (one statement); the new counts in order.
    pub async fn fail_all(&self, scopes: &[Scope]) -> Result<Vec<i64>, StoreError> {
        let window = i64::MAX / 2;
        debug_assert!(!scopes.iter().any(|s| matches!(s, Scope::Address(_))), "address scopes use an hourly window");
        let keys: Vec<String> = scopes.iter().map(Scope::key).collect();
        self.store.record_failures(&keys, self.clock.now(), window).await
    }

    /// Takes back an admitted attempt that turned out not to be a failure.
    pub async fn refund(&self, scope: &Scope) -> Result<(), StoreError> {
        self.store.refund(&scope.key()).await
    }

    /// Clears the scopes' counters, in one statement.
    pub async fn reset(&self, scopes: &[Scope]) -> Result<(), StoreError> {
        let keys: Vec<String> = scopes.iter().map(Scope::key).collect();
        self.store.reset_counters(&keys).await
    }

    /// Whether a code factor is locked, by its own counter or by the
    /// account's `second_factor` counter.
    pub async fn factor_locked(&self, factor: &Scope, account: &AccountId) -> Result<bool, StoreError> {
        let verdicts = self.verdicts(&[Scope::SecondFactor(account.clone()), factor.clone()]).await?;
        Ok(verdicts.contains(&Verdict::Locked))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::abuse::throttle::{FactorCounter, LOCK_AT, MAX_DELAY_SECS};
    use crate::testing::ManualClock;
    use crate::testing::throttles::MemoryCounters;

    fn throttles() -> (Throttles, Arc<ManualClock>) {
        let clock = ManualClock::at(1_000_000);
        (Throttles::new(Arc::new(MemoryCounters::default()), clock.clone()), clock)
    }

    fn account() -> AccountId {
        AccountId::from_stored("acct")
    }

    /// Factors' counters as the factors declare theirs.
    const APP: FactorCounter = FactorCounter { name: "app", locks: true };
    const TEXTS: FactorCounter = FactorCounter { name: "texts", locks: true };
    const LIST: FactorCounter = FactorCounter { name: "list", locks: false };

    #[tokio::test]
    async fn sec31_five_tries_are_admitted_then_the_sixth_waits_and_a_second_later_goes_through() {
        let (t, clock) = throttles();
        let scopes = [Scope::SecondFactor(account()), Scope::Factor(APP, account())];
        for n in 1..=5 {
            let a = t.admit(&scopes).await.unwrap();
            assert_eq!((a.verdict, a.counts), (Verdict::Allow, vec![n, n]));
        }
        let refused = t.admit(&scopes).await.unwrap();
        assert_eq!(refused.verdict, Verdict::Wait { retry_after: 1 });
        assert_eq!(refused.counts, vec![5, 5], "a refused attempt is not counted");
        clock.advance(1);
        assert_eq!(t.admit(&scopes).await.unwrap().verdict, Verdict::Allow);
    }

    #[tokio::test]
    async fn a_right_proof_resets_and_a_refund_takes_one_attempt_back() {
        let (t, _) = throttles();
        let address = Scope::Address("192.0.2.1".into());
        t.admit(std::slice::from_ref(&address)).await.unwrap();
        t.admit(std::slice::from_ref(&address)).await.unwrap();
        t.refund(&address).await.unwrap();
        assert_eq!(t.admit(std::slice::from_ref(&address)).await.unwrap().counts, vec![2]);
        t.reset(std::slice::from_ref(&address)).await.unwrap();
        assert_eq!(t.admit(std::slice::from_ref(&address)).await.unwrap().counts, vec![1]);
    }

    #[tokio::test]
    async fn sec31_the_second_factor_counter_locks_every_code_factor_and_sec34_recovery_never_locks() {
        let (t, clock) = throttles();
        let a = account();
        // Failures spread out enough that no backoff refuses them.
        for _ in 0..LOCK_AT {
            t.fail_all(&[Scope::SecondFactor(a.clone())]).await.unwrap();
            clock.advance(MAX_DELAY_SECS + 1);
        }
        assert!(t.factor_locked(&Scope::Factor(APP, a.clone()), &a).await.unwrap());
        assert!(t.factor_locked(&Scope::Factor(TEXTS, a.clone()), &a).await.unwrap());
        assert_eq!(t.check(&Scope::SecondFactor(a.clone())).await.unwrap(), Verdict::Locked);
        for _ in 0..LOCK_AT {
            t.fail_all(&[Scope::Factor(LIST, a.clone())]).await.unwrap();
        }
        clock.advance(MAX_DELAY_SECS + 1);
        assert_eq!(t.check(&Scope::Factor(LIST, a)).await.unwrap(), Verdict::Allow);
    }

    #[tokio::test]
    async fn verdicts_read_absent_counters_as_no_failures() {
        let (t, _) = throttles();
        let scopes = [Scope::Factor(APP, account()), Scope::Factor(TEXTS, account())];
        assert_eq!(t.verdicts(&scopes).await.unwrap(), vec![Verdict::Allow, Verdict::Allow]);
    }
}
