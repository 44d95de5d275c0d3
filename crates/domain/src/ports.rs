//! The domain's view of the outside world: time, randomness and storage.
//!
//! Domain code never reads the system clock or the OS random source itself;
//! it asks these ports, so tests can move time forward exactly and the
//! wiring in `startup.rs` is the one place the real ones are chosen.

use crate::time::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A cryptographically secure random source.
pub trait Rng: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one adapter allowed to read the wall clock")]
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_secs(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The operating system's CSPRNG.
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

// ---------------------------------------------------------------------------
// Storage. One narrow trait per concern; `Store` bundles them for wiring.
// Every method is proven on SQLite and PostgreSQL by the same tests.
// ---------------------------------------------------------------------------

use async_trait::async_trait;

use crate::audit::{AuditEntry, AuditFilter};
use crate::email::Email;
use crate::error::StoreError;
use crate::ids::{AccountId, AuthenticatorId, EnrollmentId, RecoveryCodeId};
use crate::token::TokenHash;

#[derive(Clone, Debug)]
pub struct AccountRecord {
    pub id: AccountId,
    pub email: Email,
    pub password_hash: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    /// When the account proved it receives mail at `email`.
    pub email_verified_at: Option<Timestamp>,
    /// Since when the account is an operator (`twostep admin grant`); none by default (SEC-10).
    pub admin_since: Option<Timestamp>,
}

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

#[derive(Clone, Debug)]
pub struct EnrollmentRecord {
    pub id: EnrollmentId,
    pub account_id: AccountId,
    pub secret_sealed: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct AuthenticatorRecord {
    pub id: AuthenticatorId,
    pub account_id: AccountId,
    /// The factor kind's slug (`"totp"`).
    pub kind: String,
    pub name: String,
    pub secret_sealed: Vec<u8>,
    /// The highest TOTP time step accepted so far; codes at or below it are
    /// replays (§2.1).
    pub last_step: i64,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub struct RecoveryCodeRecord {
    pub id: RecoveryCodeId,
    pub account_id: AccountId,
    /// HMAC-SHA-256 of the normalised code under the lookup key.
    pub lookup: Vec<u8>,
    /// The code, sealed, so "Reveal codes" can show it again.
    pub code_sealed: Vec<u8>,
    pub position: i64,
    pub created_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// `StoreError::Conflict` when the e-mail is taken.
    async fn insert_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<AccountRecord>, StoreError>;
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError>;
    async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, StoreError>;
    /// `None` enables. Returns whether the account exists.
    async fn set_disabled(&self, id: &AccountId, at: Option<Timestamp>) -> Result<bool, StoreError>;
    async fn record_sign_in(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError>;
    async fn set_password_hash(&self, id: &AccountId, hash: &str) -> Result<(), StoreError>;
    async fn set_email_verified(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError>;
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

    async fn insert_login_token(&self, token: &LoginTokenRecord) -> Result<(), StoreError>;
    async fn login_token(&self, id: &TokenHash) -> Result<Option<LoginTokenRecord>, StoreError>;
    /// Counts one second-step attempt against a live login token with fewer
    /// than `max_failures` counted, in one statement (so a burst gets no
    /// more attempts than requests in a row would); the token as counted,
    /// or `None` when it is gone, expired or worn out. A right code then
    /// consumes the token; a wrong one stays counted.
    async fn take_login_attempt(
        &self,
        id: &TokenHash,
        now: Timestamp,
        max_failures: i64,
    ) -> Result<Option<LoginTokenRecord>, StoreError>;
    /// Takes back an attempt that was never evaluated (throttled).
    async fn refund_login_attempt(&self, id: &TokenHash) -> Result<(), StoreError>;
    /// What a verified second step writes, in one transaction: consumes the
    /// login token if it is still live (false, and nothing written, when
    /// another request consumed it first), then inserts `session` and sets
    /// the account's `last_sign_in_at` to its creation time.
    async fn finish_sign_in(
        &self,
        login_token: &TokenHash,
        now: Timestamp,
        session: &SessionRecord,
    ) -> Result<bool, StoreError>;
}

/// Result of confirming an enrolment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The enrolment was gone (superseded, expired, or confirmed by a racing request).
    Gone,
    /// Added; `first` when it turned 2FA on (the recovery codes were stored).
    Added { first: bool },
}

/// Result of storing a verified phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhoneOutcome {
    /// It turned 2FA on (the recovery codes were stored).
    pub first: bool,
    /// It replaced an earlier number.
    pub replaced: bool,
}

/// What `/me` and the sign-in method list need to know about an account's
/// factors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// The kinds of its authenticators (`"totp"`, `"phone"`), sorted, without repeats.
    pub kinds: Vec<String>,
    pub unused_recovery_codes: usize,
    /// The counters asked for that exist, by scope.
    pub counters: Vec<(String, crate::throttle::Counter)>,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores a new enrolment and deletes the account's earlier ones.
    async fn replace_enrollment(&self, enrollment: &EnrollmentRecord) -> Result<(), StoreError>;
    async fn enrollment(&self, id: &EnrollmentId) -> Result<Option<EnrollmentRecord>, StoreError>;
    /// In one transaction: deletes the enrolment (must still exist), adds the
    /// authenticator, and stores `codes` only if it is the account's first.
    async fn confirm_enrollment(
        &self,
        enrollment: &EnrollmentId,
        authenticator: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<ConfirmOutcome, StoreError>;
    async fn authenticators(&self, account: &AccountId) -> Result<Vec<AuthenticatorRecord>, StoreError>;
    /// The kinds of the account's authenticators, its unused recovery codes
    /// (counted, no secrets read) and the throttle counters of `scopes`
    /// (absent ones left out), in one statement.
    async fn factor_summary(&self, account: &AccountId, scopes: &[String]) -> Result<FactorSummary, StoreError>;
    /// The replay guard: sets `last_step` only if `step` is greater, in one
    /// atomic statement. True for exactly one caller per step.
    async fn advance_last_step(&self, id: &AuthenticatorId, step: i64, now: Timestamp) -> Result<bool, StoreError>;
    /// Removes one authenticator; when it was the last, the recovery codes
    /// go too. Returns `None` if not found, else how many remain.
    async fn delete_authenticator(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
    ) -> Result<Option<usize>, StoreError>;
    /// In one transaction: replaces the account's phone authenticator (if
    /// any) with `phone`, and stores `codes` only if it is the account's
    /// first factor.
    async fn add_phone(
        &self,
        phone: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<PhoneOutcome, StoreError>;
    /// Removes every factor, enrolment and recovery code of the account.
    async fn delete_all_factors(&self, account: &AccountId) -> Result<(), StoreError>;
    async fn recovery_codes(&self, account: &AccountId) -> Result<Vec<RecoveryCodeRecord>, StoreError>;
    /// Replaces the account's set in one transaction.
    async fn replace_recovery_codes(&self, account: &AccountId, codes: &[RecoveryCodeRecord])
    -> Result<(), StoreError>;
    /// Marks a code used if it was unused; true for exactly one caller.
    async fn use_recovery_code(&self, id: &RecoveryCodeId, now: Timestamp) -> Result<bool, StoreError>;
}

/// A browser that may skip the second factor for 30 days.
#[derive(Clone, Debug)]
pub struct RememberedBrowser {
    pub id: String,
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_reset(
        &self,
        id: &TokenHash,
        account: &AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes a live reset token; the account for exactly one caller.
    async fn consume_reset(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError>;
    /// The account of a live reset token, without using it up.
    async fn reset_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError>;
    async fn delete_resets_of(&self, account: &AccountId) -> Result<(), StoreError>;

    async fn insert_remembered(&self, browser: &RememberedBrowser) -> Result<(), StoreError>;
    async fn remembered(&self, token: &TokenHash) -> Result<Option<RememberedBrowser>, StoreError>;
    async fn touch_remembered(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;
    async fn remembered_of(&self, account: &AccountId) -> Result<Vec<RememberedBrowser>, StoreError>;
    async fn delete_remembered(&self, account: &AccountId, id: &str) -> Result<bool, StoreError>;
    async fn delete_remembered_of(&self, account: &AccountId) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn counter(&self, scope: &str) -> Result<Option<crate::throttle::Counter>, StoreError>;
    /// Several counters in one statement, by scope; absent ones are left out.
    async fn counters(&self, scopes: &[String]) -> Result<Vec<(String, crate::throttle::Counter)>, StoreError>;
    /// Adds one failure to each of several scopes in one atomic upsert (a
    /// window older than `window_secs` starts over at one); the new
    /// counts in the order of `scopes` (which must not repeat a scope).
    async fn record_failures(
        &self,
        scopes: &[String],
        now: Timestamp,
        window_secs: i64,
    ) -> Result<Vec<i64>, StoreError>;
    /// Judges and counts one attempt against several scopes as one atomic
    /// step on every instance: the counters are locked (an absent one
    /// reads as no failures), `judge` sees them in the order of `scopes`,
    /// and only when it answers `Allow` is each counted (a window older than
    /// its `window_secs` starts over at one). A refused attempt changes
    /// nothing.
    async fn admit(
        &self,
        scopes: &[(String, i64)],
        now: Timestamp,
        judge: &(dyn for<'c> Fn(&'c [crate::throttle::Counter]) -> crate::throttle::Verdict + Send + Sync),
    ) -> Result<crate::throttle::Admission, StoreError>;
    /// Counts one use of a capped, windowed allowance (invitations, sign-up
    /// attempts) in one atomic statement: the check against `cap` is in the
    /// upsert's `WHERE`, so concurrent callers on any instance can never
    /// together pass it. `Ok(None)` when taken; `Ok(Some(retry_after))`
    /// when the cap is reached in the current window.
    async fn take_allowance(
        &self,
        scope: &str,
        now: Timestamp,
        window_secs: i64,
        cap: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Takes one counted attempt back (never below zero).
    async fn refund(&self, scope: &str) -> Result<(), StoreError>;
    /// Deletes several counters in one statement.
    async fn reset_counters(&self, scopes: &[String]) -> Result<(), StoreError>;
    /// Clears every counter of an account (admin unlock).
    async fn reset_counters_of(&self, account: &AccountId) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
}

// ---------------------------------------------------------------------------
// Delivery: every outgoing message (mail, SMS, voice call) is committed to an
// outbox table first and sent by a worker, so a request never waits for a
// provider and a crash loses nothing (issue 5).
// ---------------------------------------------------------------------------

/// How a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "email" => Self::Email,
            "sms" => Self::Sms,
            "voice" => Self::Voice,
            _ => return None,
        })
    }
}

/// A message as a `Sender` receives it: opened from the outbox.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Outbound {
    /// The outbox row id; providers may use it as an idempotency key.
    #[serde(skip)]
    pub id: String,
    #[serde(skip, default = "default_channel")]
    pub channel: Channel,
    /// An e-mail address, or an E.164 number for SMS and voice.
    pub to: String,
    /// E-mail subject; empty for SMS and voice.
    #[serde(default)]
    pub subject: String,
    /// The e-mail's plain-text part, or the SMS text.
    pub text: String,
    /// The e-mail's HTML part; empty for SMS and voice.
    #[serde(default)]
    pub html: String,
    /// The one-time code the message carries, if any: a voice call reads it
    /// digit by digit. Never logged.
    #[serde(default)]
    pub code: Option<String>,
    /// After this the message is pointless (its code has expired).
    #[serde(skip, default)]
    pub expires_at: Timestamp,
}

fn default_channel() -> Channel {
    Channel::Email
}

impl std::fmt::Debug for Outbound {
    // Bodies hold codes and links: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbound({} {}, {:?})", self.channel.as_str(), self.id, self.subject)
    }
}

/// What a provider answered when it took a message.
#[derive(Clone, Debug, Default)]
pub struct Delivered {
    /// The provider's id for the message (Twilio's `sid`, an SMTP queue id…).
    pub provider_id: Option<String>,
}

/// Why a provider did not take a message. The text must never hold the
/// message body or its code.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: timeouts, 5xx, 429, connection refused.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work: a refused number, bad credentials, a 4xx.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// One provider for one or more channels (SMTP for e-mail; Twilio, a webhook
/// or the dev outbox for SMS and voice).
#[async_trait]
pub trait Sender: Send + Sync {
    /// A short name for logs and the outbox row (`"smtp"`, `"twilio"`…).
    fn provider(&self) -> &'static str;
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError>;
}

/// The final or current state of an outbox row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OutboxRecord {
    pub id: String,
    pub account_id: Option<AccountId>,
    pub channel: Channel,
    /// `Outbound` as JSON, sealed: bodies carry codes and reset links.
    pub payload_sealed: Vec<u8>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub expires_at: Timestamp,
    /// Another worker holds the row until then.
    pub locked_until: Option<Timestamp>,
    pub provider: Option<String>,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn insert_outbox(&self, message: &OutboxRecord) -> Result<(), StoreError>;
    /// Pending rows due at `now` and not held by a worker, oldest first.
    async fn due_outbox(&self, now: Timestamp, limit: i64) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Takes a row for one worker until `until`; true for exactly one caller.
    async fn claim_outbox(&self, id: &str, now: Timestamp, until: Timestamp) -> Result<bool, StoreError>;
    /// Records a try that will be retried at `next_attempt_at`.
    async fn retry_outbox(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Records the final status.
    async fn finish_outbox(&self, id: &str, outcome: &OutboxFinish) -> Result<(), StoreError>;
    /// The latest rows, newest first (the dev outbox page, tests).
    async fn recent_outbox(&self, limit: i64) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Deletes rows that finished before `before`; returns how many.
    async fn purge_outbox(&self, before: Timestamp) -> Result<u64, StoreError>;
}

#[derive(Clone, Debug)]
pub struct OutboxFinish {
    pub status: OutboxStatus,
    pub attempts: i64,
    pub at: Timestamp,
    pub provider: String,
    pub provider_id: Option<String>,
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------
// One-time codes sent by SMS, voice or e-mail (security.md §2.8, SEC-26).
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Organisations (issue 6).
// ---------------------------------------------------------------------------

/// A member's role. An organisation always keeps at least one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgRole {
    Owner,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    pub require_two_factor: bool,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct MemberRecord {
    pub account_id: AccountId,
    pub email: Email,
    pub role: OrgRole,
    /// Whether the account has any second factor.
    pub two_factor_enabled: bool,
    pub added_at: Timestamp,
}

/// Why a membership change was refused, or that it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    Done,
    NotMember,
    /// It would leave the organisation without an owner.
    LastOwner,
}

/// A pending invitation to an organisation, addressed to an e-mail address
/// (whether or not an account has it).
#[derive(Clone, Debug)]
pub struct InvitationRecord {
    pub id: String,
    pub org_id: String,
    pub email: Email,
    pub role: OrgRole,
    pub invited_by: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An invitation with what its lists show: the organisation's name and the
/// inviting owner's address.
#[derive(Clone, Debug)]
pub struct InvitationView {
    pub invitation: InvitationRecord,
    pub org_name: String,
    pub invited_by_email: Email,
}

/// The outcome of accepting an invitation.
#[derive(Clone, Debug)]
pub enum Acceptance {
    /// The invitation was used up and the account is now a member.
    Joined(InvitationRecord),
    /// The invitation was used up, but the account already was a member.
    AlreadyMember(InvitationRecord),
    /// No pending invitation with this id for the account's verified address.
    NotFound,
}

#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates the organisation with `owner` as its first owner, in one transaction.
    async fn insert_org(&self, org: &OrgRecord, owner: &AccountId) -> Result<(), StoreError>;
    async fn org(&self, id: &str) -> Result<Option<OrgRecord>, StoreError>;
    /// The account's organisations and its role in each, by name.
    async fn orgs_of(&self, account: &AccountId) -> Result<Vec<(OrgRecord, OrgRole)>, StoreError>;
    /// Members with their e-mail and 2FA status, owners first, then by e-mail.
    async fn members(&self, org: &str) -> Result<Vec<MemberRecord>, StoreError>;
    async fn role_in(&self, org: &str, account: &AccountId) -> Result<Option<OrgRole>, StoreError>;
    /// Changes a role, refusing to demote the last owner (atomically).
    async fn set_role(&self, org: &str, account: &AccountId, role: OrgRole) -> Result<MembershipChange, StoreError>;
    /// Removes a member, refusing to remove the last owner (atomically).
    async fn remove_member(&self, org: &str, account: &AccountId) -> Result<MembershipChange, StoreError>;
    async fn set_require_two_factor(&self, org: &str, require: bool) -> Result<(), StoreError>;
    /// Whether any organisation of the account requires 2FA.
    async fn org_requires_two_factor(&self, account: &AccountId) -> Result<bool, StoreError>;
    /// The organisations that require 2FA of this member, by name.
    async fn orgs_requiring_two_factor(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError>;
    /// Stores an invitation, replacing (renewing) the pending one of the same
    /// organisation and address; deletes the organisation's expired ones.
    async fn upsert_invitation(&self, invitation: &InvitationRecord, now: Timestamp) -> Result<(), StoreError>;
    /// Pending (unexpired) invitations to this address, oldest first.
    async fn invitations_for(&self, email: &Email, now: Timestamp) -> Result<Vec<InvitationView>, StoreError>;
    /// Pending (unexpired) invitations of an organisation, oldest first.
    async fn org_invitations(&self, org: &str, now: Timestamp) -> Result<Vec<InvitationView>, StoreError>;
    /// Uses up the pending invitation `id` to the account's current address,
    /// only while that address is verified, and adds the account as a member
    /// with its role, in one transaction: of two concurrent accepts only one
    /// finds the invitation. The address and its verification are read in
    /// the statement that takes the invitation, never from the caller.
    async fn accept_invitation(&self, id: &str, account: &AccountId, now: Timestamp) -> Result<Acceptance, StoreError>;
    /// Deletes the pending invitation `id` to the account's current, verified
    /// address; `None` when there is none.
    async fn decline_invitation(
        &self,
        id: &str,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Option<InvitationRecord>, StoreError>;
    /// Deletes invitation `id` of `org` (an owner's revoke); whether there was one.
    async fn revoke_invitation(&self, org: &str, id: &str) -> Result<Option<InvitationRecord>, StoreError>;
    /// Deletes invitations that expired at or before `before`; how many.
    async fn purge_invitations(&self, before: Timestamp) -> Result<u64, StoreError>;
}

// ---------------------------------------------------------------------------
// Administration (issue 6): the operator role and the admin's user list.
// ---------------------------------------------------------------------------

/// Which accounts the admin's user list shows.
#[derive(Clone, Debug, Default)]
pub struct AccountQuery {
    /// A part of the e-mail address (case-insensitive), or an exact account id.
    pub text: Option<String>,
    /// `Some(true)`: only accounts with a second factor; `Some(false)`: only without.
    pub two_factor: Option<bool>,
    pub limit: i64,
}

/// An account as the admin's user list shows it.
#[derive(Clone, Debug)]
pub struct AccountSummary {
    pub account: AccountRecord,
    /// The kinds of its second factors (`"totp"`, `"phone"`), sorted, without repeats.
    pub factor_kinds: Vec<String>,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Grants (`Some`) or revokes (`None`) the operator role. Returns whether the account exists.
    async fn set_admin(&self, id: &AccountId, since: Option<Timestamp>) -> Result<bool, StoreError>;
    /// Accounts by e-mail, with their factor kinds.
    async fn search_accounts(&self, query: &AccountQuery) -> Result<Vec<AccountSummary>, StoreError>;
}

// ---------------------------------------------------------------------------
// IP allow-lists (issue 6, story P3).
// ---------------------------------------------------------------------------

/// One entry of an account's IP allow-list, as stored; `cidr` is the
/// normalised text of an `allowlist::IpRange`.
#[derive(Clone, Debug)]
pub struct AllowlistRecord {
    pub account_id: AccountId,
    pub cidr: String,
    pub label: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait AllowlistStore: Send + Sync {
    /// The account's entries, in the order they were saved.
    async fn allowlist(&self, account: &AccountId) -> Result<Vec<AllowlistRecord>, StoreError>;
    /// Replaces the account's list with `entries`, in this order, in one transaction.
    async fn replace_allowlist(&self, account: &AccountId, entries: &[AllowlistRecord]) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------------------
// Push approval (issue 9, security.md §2.9).
// ---------------------------------------------------------------------------

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

#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the services need from storage.
pub trait Store:
    AccountStore
    + SessionStore
    + FactorStore
    + ThrottleStore
    + CredentialStore
    + AuditLog
    + OutboxStore
    + CodeStore
    + OrgStore
    + AdminStore
    + AllowlistStore
    + PushStore
    + Health
{
}
impl<T> Store for T where
    T: AccountStore
        + SessionStore
        + FactorStore
        + ThrottleStore
        + CredentialStore
        + AuditLog
        + OutboxStore
        + CodeStore
        + OrgStore
        + AdminStore
        + AllowlistStore
        + PushStore
        + Health
{
}
