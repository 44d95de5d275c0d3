//! What one-time codes sent by SMS, voice or e-mail need from storage
//! (security.md §2.8, SEC-26).

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;

use crate::notify::store::Channel;
use crate::time::Timestamp;

/// What a sent code may be used for; a code works for its purpose only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    Login,
    PhoneVerify,
    EmailVerify,
    Reauth,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::PhoneVerify => "phone_verify",
            Self::EmailVerify => "email_verify",
            Self::Reauth => "reauth",
        }
    }
}

#[derive(Clone, Debug)]
pub struct OobCodeRecord {
    pub id: String,
    pub account_id: AccountId,
    pub purpose: CodePurpose,
    pub channel: Channel,
    /// A keyed hash of the E.164 number or e-mail address the code went to
    /// (`Twostep::destination_key`): the database never holds a phone
    /// number in the clear.
    pub destination: String,
    /// The destination itself, sealed, for a code that proves a new number
    /// (phone verification reads it back); `None` otherwise.
    pub destination_sealed: Option<Vec<u8>>,
    /// What the code is bound to: the login token's or session's hash.
    pub binding: String,
    /// HMAC-SHA-256(code key, id ‖ purpose ‖ destination ‖ code).
    pub code_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: i64,
}

/// What to count sends over (§2.8 caps). `None` fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct SendFilter<'a> {
    pub account: Option<&'a AccountId>,
    /// The destination's keyed hash.
    pub destination: Option<&'a str>,
    pub binding: Option<&'a str>,
    /// SMS and voice sends to numbers with this calling code (`"44"`).
    pub calling_code: Option<&'a str>,
    /// SMS and voice sends only (the global phone cap).
    pub phone_only: bool,
}

/// One §2.8 cap to check: the sends matching `filter` since `since`.
#[derive(Clone, Debug)]
pub struct SendCheck<'a> {
    pub filter: SendFilter<'a>,
    pub since: Timestamp,
}

/// The send-log row a code's send adds.
#[derive(Clone, Debug)]
pub struct SendRecord<'a> {
    /// Calling code of an SMS or voice destination, `""` for e-mail.
    pub calling_code: &'a str,
}

/// How many sends matched since a time, and when the latest was.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendCount {
    pub count: i64,
    pub earliest: Option<Timestamp>,
    pub latest: Option<Timestamp>,
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// In one transaction, serialised with every other send on any
    /// instance: counts the sends of each `checks` entry, asks `decide`
    /// (`Some(retry_after)` refuses, and nothing is written), and otherwise
    /// voids the account's earlier code of the same purpose (only the latest
    /// is valid), stores this one and logs the send. Returns the refusal.
    async fn insert_oob_code_capped(
        &self,
        code: &OobCodeRecord,
        send: &SendRecord<'_>,
        checks: &[SendCheck<'_>],
        decide: &(dyn for<'c> Fn(&'c [SendCount]) -> Option<i64> + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;
    /// The account's live code of `purpose`, if any.
    async fn oob_code(&self, account: &AccountId, purpose: CodePurpose) -> Result<Option<OobCodeRecord>, StoreError>;
    /// Counts one try at the code, before it is compared, if fewer than
    /// `max_tries` were counted (one statement); the new count, or `None`
    /// when the code is worn out or gone.
    async fn count_oob_attempt(&self, id: &str, max_tries: i64) -> Result<Option<i64>, StoreError>;
    /// Deletes the code; true for exactly one caller (single use).
    async fn take_oob_code(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes send-log rows older than `before`.
    async fn purge_sends(&self, before: Timestamp) -> Result<u64, StoreError>;
}
