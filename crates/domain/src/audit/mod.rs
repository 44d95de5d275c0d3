//! Security events, written by the domain as things happen (§2.13). The
//! table is append-only: the store refuses updates and deletes.

mod kind;
mod kinds;
mod log_page;
pub mod readable;
mod trail;
mod wording;

pub use kind::{AuditKind, AuditKindInfo, Companion, Said, Sentence, Steps, all as all_kinds};
pub use log_page::{LogPage, LogQuery};
pub(crate) use trail::{AuditEvent, Auditor};
pub use wording::Category;
pub(crate) use wording::NOT_YOU_CHANGE;

use crate::ids::AccountId;
use crate::time::Timestamp;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User,
    /// An operator through the admin API or pages; the entry's details name them.
    Admin,
    Cli,
    System,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }
}

/// Where a request came from; carried into every audit entry.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One row of the audit log. `details` is free text and never holds a secret.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// The row's place in the log, increasing with every append: the
    /// security log's paging cursor. 0 until stored.
    pub id: i64,
    pub at: Timestamp,
    pub kind: String,
    pub account_id: Option<AccountId>,
    pub email: Option<String>,
    pub actor: String,
    pub factor_id: Option<String>,
    pub success: bool,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub details: String,
}

/// Which entries to read. Construct with `..AuditFilter::default()` so new
/// filters do not break callers.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub account_id: Option<AccountId>,
    pub kind: Option<String>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries before this instant.
    pub until: Option<Timestamp>,
    /// Only entries older than this row (`AuditEntry::id`): a cursor for
    /// paging newest first that rows appended meanwhile cannot shift, as an
    /// offset would.
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entry: &AuditEntry) -> Result<(), crate::error::StoreError>;
    async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, crate::error::StoreError>;
}
