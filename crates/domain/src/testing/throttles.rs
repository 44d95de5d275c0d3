//! In-memory throttle counters: the store's contract, with one lock making
//! `admit` atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::abuse::store::ThrottleStore;
use crate::abuse::throttle::{Admission, Counter, TokenTried, TokenTry, Verdict};
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::testing::sessions::MemSessions;
use crate::time::Timestamp;

/// The store's contract in memory: one lock makes `admit` atomic.
#[derive(Default)]
pub struct MemoryCounters {
    counters: Mutex<HashMap<String, Counter>>,
    /// Where the login tokens a `TokenTry` counts live (none: every token
    /// is unknown).
    tokens: Mutex<Option<Arc<MemSessions>>>,
}

impl MemoryCounters {
    /// Counts login tokens' tries in `sessions`.
    pub fn count_tokens_in(&self, sessions: Arc<MemSessions>) {
        *self.tokens.lock().unwrap_or_else(PoisonError::into_inner) = Some(sessions);
    }
}

fn bump(c: Option<Counter>, now: Timestamp, window: i64) -> Counter {
    match c {
        Some(c) if now.secs() - c.window_start.secs() < window => {
            Counter { failures: c.failures + 1, last_failure_at: now, ..c }
        }
        _ => Counter { failures: 1, last_failure_at: now, window_start: now },
    }
}

#[async_trait]
impl ThrottleStore for MemoryCounters {
    async fn counter(&self, scope: &str) -> Result<Option<Counter>, StoreError> {
        Ok(self.counters.lock().unwrap_or_else(PoisonError::into_inner).get(scope).copied())
    }
    async fn counters(&self, scopes: &[String]) -> Result<Vec<(String, Counter)>, StoreError> {
        let map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(scopes.iter().filter_map(|s| map.get(s).map(|c| (s.clone(), *c))).collect())
    }
    async fn record_failures(&self, scopes: &[String], now: Timestamp, window: i64) -> Result<Vec<i64>, StoreError> {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(scopes
            .iter()
            .map(|s| {
                let c = bump(map.get(s).copied(), now, window);
                map.insert(s.clone(), c);
                c.failures
            })
            .collect())
    }
    async fn admit(
        &self,
        scopes: &[(String, i64)],
        token: Option<TokenTry<'_>>,
        now: Timestamp,
        judge: &(dyn for<'c> Fn(&'c [Counter]) -> Verdict + Send + Sync),
    ) -> Result<Admission, StoreError> {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let zero = Counter { failures: 0, last_failure_at: now, window_start: now };
        let seen: Vec<Counter> = scopes.iter().map(|(k, _)| map.get(k).copied().unwrap_or(zero)).collect();
        let verdict = judge(&seen);
        let as_read = || seen.iter().map(|c| c.failures).collect();
        if verdict != Verdict::Allow {
            return Ok(Admission { verdict, counts: as_read(), token: TokenTried::NotCounted });
        }
        let token = match token {
            None => TokenTried::NotCounted,
            Some(t) => {
                let sessions = self.tokens.lock().unwrap_or_else(PoisonError::into_inner).clone();
                match sessions.and_then(|s| s.try_login(t.id, now, t.max_failures)) {
                    Some(failures) => TokenTried::Counted { failures },
                    None => return Ok(Admission { verdict, counts: as_read(), token: TokenTried::Gone }),
                }
            }
        };
        let counts = scopes
            .iter()
            .map(|(k, window)| {
                let c = bump(map.get(k).copied(), now, *window);
                map.insert(k.clone(), c);
                c.failures
            })
            .collect();
        Ok(Admission { verdict, counts, token })
    }
    async fn take_allowance(
        &self,
        key: &str,
        now: Timestamp,
        window: i64,
        cap: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let c = bump(map.get(key).copied(), now, window);
        if c.failures > cap {
            return Ok(Some((c.window_start.secs() + window - now.secs()).max(1)));
        }
        map.insert(key.to_owned(), c);
        Ok(None)
    }
    async fn refund(&self, scope: &str) -> Result<(), StoreError> {
        if let Some(c) = self.counters.lock().unwrap_or_else(PoisonError::into_inner).get_mut(scope) {
            c.failures = (c.failures - 1).max(0);
        }
        Ok(())
    }
    async fn reset_counters(&self, scopes: &[String]) -> Result<(), StoreError> {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for s in scopes {
            map.remove(s);
        }
        Ok(())
    }
    async fn reset_counters_of(&self, account: &AccountId) -> Result<(), StoreError> {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|k, _| !k.contains(account.as_str()));
        Ok(())
    }
}
