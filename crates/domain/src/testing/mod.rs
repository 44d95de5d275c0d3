//! In-memory fakes of the ports and stores, shared by the narrow services'
//! unit tests. Each fake keeps its rows in a `Mutex` and answers the way the
//! SQL does in the cases the services rely on (one conditional write per
//! single-use step), so a rule proven here is the rule the server runs.

pub mod admin;
pub mod allowlists;
pub mod audit;
pub mod credentials;
pub mod factors;
pub mod kit;
pub mod orgs;
pub mod outbox;
pub mod sessions;
pub mod throttles;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use crate::accounts::email::Email;
use crate::accounts::store::AccountRecord;
use crate::audit::RequestContext;
use crate::ids::AccountId;
use crate::ports::{Clock, Rng};
use crate::time::Timestamp;

/// A clock that moves only when told.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(secs: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(secs)))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// Distinct, repeatable bytes: every fill differs from the last.
#[derive(Default)]
pub struct CountingRng(AtomicU8);

impl Rng for CountingRng {
    fn fill(&self, buf: &mut [u8]) {
        let start = self.0.fetch_add(1, Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = start.wrapping_add(u8::try_from(i % 251).unwrap_or(0)).wrapping_mul(31);
        }
    }
}

/// An enabled, verified account with a dummy password hash.
pub fn account(id: &str, email: &str) -> AccountRecord {
    AccountRecord {
        id: AccountId::from_stored(id),
        email: Email::parse(email).expect("test e-mail"),
        password_hash: String::new(),
        created_at: Timestamp::from_secs(0),
        disabled_at: None,
        last_sign_in_at: None,
        email_verified_at: Some(Timestamp::from_secs(0)),
        admin_since: None,
    }
}

pub fn ctx() -> RequestContext {
    RequestContext {
        ip: "192.0.2.1".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0".into(),
        request_id: "test".into(),
    }
}
