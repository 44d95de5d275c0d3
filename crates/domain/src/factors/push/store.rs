//! What push approval needs from storage: devices, pairings and challenges.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{AccountId, AuthenticatorId};
use crate::token::TokenHash;

use crate::factors::store::AuthenticatorRecord;
use crate::time::Timestamp;

/// A companion device: an authenticator of kind `push` plus its key.
#[derive(Clone, Debug)]
pub struct PushDeviceRecord {
    pub authenticator: AuthenticatorRecord,
    /// The device's ECDSA P-256 public key, SEC1 uncompressed (65 bytes).
    pub public_key: Vec<u8>,
    /// Its Web Push subscription as JSON, sealed; `None` when it has none.
    pub webpush_sealed: Option<Vec<u8>>,
    pub last_seen_at: Option<Timestamp>,
}

/// Where a push challenge stands, as stored. An unanswered challenge past
/// its expiry is `Pending` in the table and expired to everyone reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushStatus {
    Pending,
    Approved,
    Denied,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Pending,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PushChallengeRecord {
    pub id: String,
    pub account_id: AccountId,
    /// The hash of the login token the challenge is bound to.
    pub login_token: String,
    /// The number shown on the sign-in page, 0–99.
    pub number: i64,
    pub status: PushStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    /// The device that answered.
    pub device_id: Option<AuthenticatorId>,
    /// Denied with "this wasn't me".
    pub not_me: bool,
    /// When the approval became a session.
    pub used_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
    pub place: Option<String>,
}

/// How many pushes an account raised, for the fatigue caps (§2.9).
#[derive(Clone, Copy, Debug, Default)]
pub struct PushCounts {
    /// Pending (answered or not) or denied since the window's start.
    pub unapproved_recent: i64,
    /// The oldest of those, to compute `Retry-After`.
    pub oldest_recent: Option<Timestamp>,
    /// Pushes not approved since the later of the last approved push and
    /// the last successful sign-in.
    pub since_last_success: i64,
}

#[async_trait]
pub trait PushStore: Send + Sync {
    /// Stores a pairing code's hash and drops the account's earlier ones.
    async fn replace_pairing(
        &self,
        id: &TokenHash,
        account: &AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The account of a live pairing code.
    async fn pairing_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError>;
    /// In one transaction: consumes the pairing code (it must still be live;
    /// false otherwise, and nothing is stored) and adds the device.
    async fn add_push_device(
        &self,
        pairing: &TokenHash,
        now: Timestamp,
        device: &PushDeviceRecord,
    ) -> Result<bool, StoreError>;
    async fn push_device(&self, id: &AuthenticatorId) -> Result<Option<PushDeviceRecord>, StoreError>;
    async fn push_devices(&self, account: &AccountId) -> Result<Vec<PushDeviceRecord>, StoreError>;
    async fn set_push_subscription(&self, id: &AuthenticatorId, sealed: Option<&[u8]>) -> Result<(), StoreError>;
    async fn touch_push_device(&self, id: &AuthenticatorId, at: Timestamp) -> Result<(), StoreError>;
    /// Renames any authenticator of the account; false when there is none.
    async fn rename_authenticator(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// In one step serialised with the account's other raises on any
    /// instance: reads the fatigue counts (`since` the window's start,
    /// `last_success` the last sign-in), asks `decide` (`Some(retry_after)`
    /// refuses, and nothing is stored), else stores the challenge.
    async fn insert_push_challenge_capped(
        &self,
        challenge: &PushChallengeRecord,
        since: Timestamp,
        last_success: Timestamp,
        decide: &(dyn for<'c> Fn(&'c PushCounts) -> Option<i64> + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;
    async fn push_challenge(&self, id: &str) -> Result<Option<PushChallengeRecord>, StoreError>;
    /// Live, unanswered challenges of the account, newest first.
    async fn pending_push_challenges(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Vec<PushChallengeRecord>, StoreError>;
    /// Answers a challenge if it is still pending and live; true for exactly one caller.
    async fn answer_push_challenge(
        &self,
        id: &str,
        status: PushStatus,
        device: &AuthenticatorId,
        not_me: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Marks an approved challenge of this login token used; true for exactly one caller.
    async fn use_push_challenge(&self, id: &str, login_token: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// Deletes challenges and pairings created or expired before `before`.
    async fn purge_push(&self, before: Timestamp) -> Result<u64, StoreError>;
}
