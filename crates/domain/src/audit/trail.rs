//! `Auditor`: the narrow service that appends to the audit log. It holds
//! only the log and the clock; every other service records through it.

use std::sync::Arc;

use crate::audit::{Actor, AuditEntry, AuditFilter, AuditKind, AuditLog, RequestContext};
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::ports::Clock;

pub(crate) struct Auditor {
    log: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

impl Auditor {
    pub fn new(log: Arc<dyn AuditLog>, clock: Arc<dyn Clock>) -> Self {
        Self { log, clock }
    }

    /// Appends an event. A failure to audit is logged, not fatal: refusing
    /// a sign-in because the log table hiccuped would lock users out, while
    /// the tracing line still records the event.
    pub async fn record(&self, ev: AuditEvent<'_>, ctx: &RequestContext) {
        let entry = self.entry(ev, ctx);
        Self::announce(&entry);
        if let Err(e) = self.log.append(&entry).await {
            tracing::error!(error = %e, event = entry.kind, "could not write the audit log");
        }
    }

    /// The row an event becomes, stamped now, for a caller that writes it
    /// in the same transaction as what it records (a sign-in's session), so
    /// the two commit or vanish together. `announce` it once committed.
    pub fn entry(&self, ev: AuditEvent<'_>, ctx: &RequestContext) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: self.clock.now(),
            kind: ev.kind.as_str().to_owned(),
            account_id: ev.account.cloned(),
            email: None,
            actor: ev.actor.as_str().to_owned(),
            factor_id: ev.factor_id,
            success: ev.success,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            request_id: ctx.request_id.clone(),
            details: ev.details,
        }
    }

    /// The tracing line and the operator's counter of a written entry: by
    /// event and outcome only, never the account (issue 19).
    pub fn announce(entry: &AuditEntry) {
        tracing::info!(
            event = entry.kind,
            account = entry.account_id.as_ref().map(AccountId::as_str),
            success = entry.success,
            details = entry.details,
            "audit"
        );
        metrics::counter!("twostep_audit_events_total", "event" => entry.kind.clone(), "success" => if entry.success { "true" } else { "false" })
            .increment(1);
    }

    pub async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.log.entries(filter).await
    }

    /// The account's latest `limit` entries of one kind, newest first.
    pub async fn latest(
        &self,
        account: &AccountId,
        kind: AuditKind,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let filter = AuditFilter {
            account_id: Some(account.clone()),
            kind: Some(kind.as_str().to_owned()),
            limit,
            ..Default::default()
        };
        self.log.entries(&filter).await
    }
}

/// An event to audit; see `Auditor::record`.
pub(crate) struct AuditEvent<'a> {
    pub kind: AuditKind,
    pub account: Option<&'a AccountId>,
    pub actor: Actor,
    pub factor_id: Option<String>,
    pub success: bool,
    pub details: String,
}

impl<'a> AuditEvent<'a> {
    pub fn user(kind: AuditKind, account: &'a AccountId) -> Self {
        Self {
            kind,
            account: Some(account),
            actor: Actor::User,
            factor_id: None,
            success: true,
            details: String::new(),
        }
    }

    /// An event with no account: an attempt on an e-mail that has none.
    pub fn anonymous(kind: AuditKind) -> Self {
        Self { kind, account: None, actor: Actor::User, factor_id: None, success: true, details: String::new() }
    }

    #[must_use]
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }

    #[must_use]
    pub fn factor(mut self, id: impl Into<String>) -> Self {
        self.factor_id = Some(id.into());
        self
    }

    #[must_use]
    pub fn details(mut self, d: impl Into<String>) -> Self {
        self.details = d.into();
        self
    }

    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }
}
