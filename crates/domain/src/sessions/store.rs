//! What sessions and login tokens need from storage.

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::factors::store::ProofWrites;
use crate::ids::AccountId;
use crate::token::TokenHash;

use crate::accounts::store::AccountRecord;
use crate::policy::store::AllowlistRecord;
use crate::sessions::cache::SessionChange;
use crate::time::Timestamp;

/// What a session may do. `Full` is a normal session; `Enrollment` (a later
/// policy issue) may only reach `/me` and first-factor set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    Full,
    Enrollment,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Enrollment => "enrollment",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        if s == "enrollment" { Self::Enrollment } else { Self::Full }
    }
}

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: TokenHash,
    pub account_id: AccountId,
    pub kind: SessionKind,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the password was last proven in this session.
    pub password_at: Option<Timestamp>,
    /// When a second factor was last proven in this session.
    pub second_factor_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
}

/// A session as every authenticated request needs it: the session, its
/// account and the account's IP allow-list, read in one statement.
#[derive(Clone, Debug)]
pub struct SessionLookup {
    pub session: SessionRecord,
    pub account: AccountRecord,
    /// Empty when the account restricts nothing.
    pub allowlist: Vec<AllowlistRecord>,
}

#[derive(Clone, Debug)]
pub struct LoginTokenRecord {
    pub id: TokenHash,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: i64,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session, its account and the account's allow-list in one
    /// statement (a join). `None` when either row is missing.
    async fn session_lookup(&self, id: &TokenHash) -> Result<Option<SessionLookup>, StoreError>;
    async fn touch_session(&self, id: &TokenHash, at: Timestamp) -> Result<(), StoreError>;
    /// Records proofs of the password and/or second factor.
    async fn record_proofs(
        &self,
        id: &TokenHash,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    async fn set_session_kind(&self, id: &TokenHash, kind: SessionKind) -> Result<(), StoreError>;
    /// Replaces a session's id (cookie rotation at re-auth), keeping the rest.
    async fn rotate_session(&self, old: &TokenHash, new: &TokenHash) -> Result<bool, StoreError>;
    async fn delete_session(&self, id: &TokenHash) -> Result<(), StoreError>;
    /// Ends every session of the account but `keep`.
    async fn delete_sessions_of(&self, account: &AccountId, keep: Option<&TokenHash>) -> Result<u64, StoreError>;
    /// The account's sessions, most recently seen first.
    async fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError>;
    /// Tells every other instance (and process) sharing the database that
    /// `change` was written, so they drop it from their session caches
    /// (`sessions::cache`). Called right after the change commits.
    async fn announce(&self, change: &SessionChange) -> Result<(), StoreError>;

    async fn insert_login_token(&self, token: &LoginTokenRecord) -> Result<(), StoreError>;
    async fn login_token(&self, id: &TokenHash) -> Result<Option<LoginTokenRecord>, StoreError>;
    /// What a verified second step writes, in one transaction: the proof's
    /// writes (`ProofWrites`: its replay guard first, the counters it
    /// clears, its audit rows), then consumes the login token if it is
    /// still live, inserts `session`, sets the account's `last_sign_in_at`
    /// to its creation time and appends `audit` to the audit log: an
    /// answered sign-in is never without its session or its record,
    /// whatever stops the process. Nothing is written unless all is.
    async fn finish_sign_in(
        &self,
        login_token: &TokenHash,
        now: Timestamp,
        session: &SessionRecord,
        proof: &ProofWrites,
        audit: &[AuditEntry],
    ) -> Result<Finished, StoreError>;
}

/// How `finish_sign_in` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    SignedIn,
    /// Another request consumed the login token first; nothing written.
    TokenGone,
    /// Another request spent the proof's step first; nothing written.
    ProofSpent,
}

/// A live session and its account, as a request sees them.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub session: SessionRecord,
    pub account: AccountRecord,
}
