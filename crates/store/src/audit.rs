//! The append-only audit log.

use async_trait::async_trait;
use twostep_domain::audit::AuditLog;
use twostep_domain::audit::{AuditEntry, AuditFilter};
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::time::Timestamp;

use crate::SqlStore;
use crate::accounts::{text, ts};
use crate::sql::{Cols, Stmt};

/// The statement that appends `e`, for `append` and for a transaction that
/// records what it does (a sign-in's session and its audit rows).
pub(crate) fn insert_entry(e: &AuditEntry) -> Stmt<'_> {
    Stmt::new(
        "INSERT INTO audit_log (at, kind, account_id, actor, factor_id, success, ip, user_agent, request_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(e.at.secs())
    .arg(&e.kind)
    .arg(e.account_id.as_ref().map(AccountId::as_str))
    .arg(&e.actor)
    .arg(e.factor_id.as_deref())
    .arg(i64::from(e.success))
    .arg(&e.ip)
    .arg(&e.user_agent)
    .arg(&e.request_id)
    .arg(&e.details)
}

fn entry(r: &dyn Cols) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.int("id")?,
        at: ts(r, "at")?,
        kind: text(r, "kind")?,
        account_id: r.opt_text("account_id")?.map(AccountId::from_stored),
        email: r.opt_text("email")?,
        actor: text(r, "actor")?,
        factor_id: r.opt_text("factor_id")?,
        success: r.int("success")? != 0,
        ip: text(r, "ip")?,
        user_agent: text(r, "user_agent")?,
        request_id: text(r, "request_id")?,
        details: text(r, "details")?,
    })
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.write(&insert_entry(e)).await?;
        Ok(())
    }

    async fn entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        // Every filter is optional; an empty string or an open bound means "any".
        // An account's entries (the sign-in path reads them on every sign-in:
        // known devices, the mandate notice, allow-list notices) are read by
        // `audit_log_account (account_id, id)`: the `$1 = '' OR` form would
        // keep the planner from that index and scan and sort the whole log.
        let account_filter =
            if f.account_id.is_some() { "l.account_id = $1" } else { "($1 = '' OR l.account_id = $1)" };
        let sql = format!(
            "SELECT l.id, l.at, l.kind, l.account_id, a.email, l.actor, l.factor_id, l.success, l.ip, l.user_agent,
                    l.request_id, l.details
             FROM audit_log l LEFT JOIN accounts a ON a.id = l.account_id
             WHERE {account_filter} AND ($2 = '' OR l.kind = $2) AND l.at >= $3 AND l.at < $4 AND l.id < $6
             ORDER BY l.id DESC LIMIT $5"
        );
        let q = Stmt::new(sql)
            .arg(f.account_id.as_ref().map_or("", AccountId::as_str))
            .arg(f.kind.as_deref().unwrap_or(""))
            .arg(f.since.map_or(i64::MIN, Timestamp::secs))
            .arg(f.until.map_or(i64::MAX, Timestamp::secs))
            .arg(if f.limit > 0 { f.limit } else { 100 })
            // The cursor: ids only grow, so "older than" is a plain bound the
            // `(account_id, id)` index answers in order.
            .arg(f.before_id.unwrap_or(i64::MAX));
        self.read_all(&q, entry).await
    }
}
