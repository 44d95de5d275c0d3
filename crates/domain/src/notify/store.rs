//! Delivery: every outgoing message (mail, SMS, voice call) is committed to
//! the outbox before it is sent, and the senders that carry it.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;

use crate::time::Timestamp;

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
    /// Hands back the leases of `ids` still held until `lease` (a worker
    /// stopping mid-pass), in one statement; rows finished since, or taken
    /// over by another worker, are left alone. Returns how many.
    async fn release_outbox(&self, ids: &[String], lease: Timestamp) -> Result<u64, StoreError>;
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
