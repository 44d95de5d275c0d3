//! The forward-auth check's memory of accounts' organisation names (see
//! `forward_auth`), kept apart so that the sessions service can drop an
//! entry without depending on the check itself.
//!
//! Only the names are kept here: the session itself is in the session cache
//! (`sessions::cache`), which signing out, revoking a session or disabling
//! an account evicts on every instance at once. A changed membership
//! reaches the check within `CACHE_SECS`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::ids::AccountId;
use crate::time::Timestamp;

/// How long an account's organisation names are answered from memory.
pub const CACHE_SECS: i64 = 5;
/// Accounts kept at most, as many as the session cache keeps sessions;
/// past it, stale entries go, then a quarter of them (a flood of distinct
/// accounts costs reads, never memory).
const CACHE_MAX: usize = crate::sessions::cache::CACHE_MAX;

struct Cached {
    at: Timestamp,
    groups: Vec<String>,
}

/// One cache for the process, not per `Twostep`: account ids are random, so
/// servers sharing a process (tests) cannot collide.
fn cache() -> std::sync::MutexGuard<'static, HashMap<AccountId, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<AccountId, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// The names kept for `account`, when read less than `CACHE_SECS` before `now`.
pub(crate) fn groups(account: &AccountId, now: Timestamp) -> Option<Vec<String>> {
    cache().get(account).filter(|c| now.secs() - c.at.secs() < CACHE_SECS).map(|c| c.groups.clone())
}

pub(crate) fn keep(account: &AccountId, now: Timestamp, groups: Vec<String>) {
    let mut c = cache();
    crate::sessions::cache::make_room(&mut c, account, CACHE_MAX, |e| now.secs() - e.at.secs() < CACHE_SECS);
    c.insert(account.clone(), Cached { at: now, groups });
}

/// Drops what is kept for an account (its organisations changed here).
pub(crate) fn forget_account(account: &AccountId) {
    cache().remove(account);
}
