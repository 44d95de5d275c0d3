//! The forward-auth check's memory of sessions it has checked (see
//! `forward_auth`), kept apart so that signing out can drop an entry
//! without depending on the check itself.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::ids::AccountId;
use crate::policy::store::AllowlistRecord;
use crate::sessions::store::SignedIn;
use crate::time::Timestamp;
use crate::token::TokenHash;

/// How long a checked session is answered from memory.
pub const CACHE_SECS: i64 = 5;
/// Sessions kept at most; past it the cache starts over (a flood of
/// distinct tokens costs reads, never memory).
pub(crate) const CACHE_MAX: usize = 10_000;

pub(crate) struct Cached {
    pub at: Timestamp,
    pub me: SignedIn,
    pub allowlist: Vec<AllowlistRecord>,
    pub groups: Vec<String>,
}

/// One cache for the process, not per `Twostep`: keys are hashes of random
/// 256-bit tokens, so servers sharing a process (tests) cannot collide.
pub(crate) fn cache() -> std::sync::MutexGuard<'static, HashMap<TokenHash, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<TokenHash, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops a session from the check's cache (it was signed out or revoked).
pub(crate) fn forget(id: &TokenHash) {
    cache().remove(id);
}

/// Drops every cached session of an account.
pub(crate) fn forget_account(account: &AccountId) {
    cache().retain(|_, c| c.me.account.id != *account);
}
