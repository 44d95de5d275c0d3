//! `Allowlists`: the narrow service over `AllowlistStore` (SEC-61). It
//! decides whether an address may use an account, ends a session used from
//! outside its list, saves a list (keeping each kept entry's date), and
//! tells the owner, at most hourly, of sign-ins refused from outside. It
//! holds the lists, sessions, the audit log, notices and the clock; who may
//! edit a list, and when, is for the caller (`allowlist.rs`).

use std::sync::Arc;

use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, AuditEvent, AuditKind, Auditor, RequestContext};
use crate::error::{SessionError, StoreError};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::policy::ip_range::{IpRange, allows};
use crate::policy::store::{AllowlistRecord, AllowlistStore};
use crate::ports::Clock;
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::sessions::service::Sessions;
use crate::token::Token;

/// A refused sign-in from outside mails the owner at most this often.
const NOTICE_EVERY_SECS: i64 = 60 * 60;

pub(crate) struct Allowlists {
    pub store: Arc<dyn AllowlistStore>,
    pub sessions: Arc<Sessions>,
    pub auditor: Arc<Auditor>,
    pub notices: Arc<Notices>,
    pub clock: Arc<dyn Clock>,
}

impl Allowlists {
    pub async fn records(&self, account: &AccountId) -> Result<Vec<AllowlistRecord>, StoreError> {
        self.store.allowlist(account).await
    }

    /// Whether `ip` may use the account: always when its list is empty.
    pub async fn allowed(&self, account: &AccountId, ip: &str) -> Result<bool, StoreError> {
        Ok(allows(&self.store.allowlist(account).await?, ip))
    }

    /// A password step from outside the account's list was refused (it did
    /// the same work as any attempt): audited, and the owner mailed at most
    /// once an hour. Right and wrong passwords differ only in the wording.
    pub async fn refused_outside(&self, a: &AccountRecord, right: bool, ctx: &RequestContext) {
        let recent = self.recent_outside_notice(&a.id).await;
        let details = if right { "right password" } else { "wrong password" };
        let event = AuditEvent::user(AuditKind::SignInOutsideAllowlist, &a.id).failed().details(details);
        self.auditor.record(event, ctx).await;
        if !recent {
            self.notices.notify(&a.id, Notice::SignInOutsideAllowlist { right_password: right }, ctx).await;
        }
    }

    /// Whether a refused sign-in from outside was audited within the hour
    /// (and so mailed about). An unreadable log errs towards mailing.
    async fn recent_outside_notice(&self, account: &AccountId) -> bool {
        let since = self.clock.now().secs() - NOTICE_EVERY_SECS;
        match self.auditor.latest(account, AuditKind::SignInOutsideAllowlist, 5).await {
            // The second step's refusals are not mailed; skip them.
            Ok(entries) => entries.iter().any(|e| e.at.secs() > since && e.details != "second step"),
            Err(_) => false,
        }
    }

    /// `Sessions::authenticate`, then the account's list: a session used
    /// from an address outside it is ended, audited and notified, and the
    /// request refused with `IpNotAllowed`.
    pub async fn authenticate_from(&self, token: &Token, ctx: &RequestContext) -> Result<SignedIn, SessionError> {
        let (signed_in, list) = self.sessions.authenticate(token).await?;
        if allows(&list, &ctx.ip) {
            return Ok(signed_in);
        }
        self.sessions.end(&signed_in.session.id).await?;
        let account = &signed_in.account.id;
        let event = AuditEvent::user(AuditKind::SessionOutsideAllowlist, account).failed().details("session ended");
        self.auditor.record(event, ctx).await;
        self.notices.notify(account, Notice::SessionOutsideAllowlist, ctx).await;
        Err(SessionError::IpNotAllowed)
    }

    /// Replaces the account's list with `wanted` (validated by the caller),
    /// keeping the date of each entry kept; an unchanged list writes, audits
    /// and mails nothing. The records as saved.
    pub async fn save(
        &self,
        account: &AccountId,
        wanted: &[(IpRange, String)],
        old: &[AllowlistRecord],
        ctx: &RequestContext,
    ) -> Result<Vec<AllowlistRecord>, StoreError> {
        let now = self.clock.now();
        let records: Vec<AllowlistRecord> = wanted
            .iter()
            .map(|(range, label)| {
                let cidr = range.to_string();
                let created_at = old.iter().find(|o| o.cidr == cidr).map_or(now, |o| o.created_at);
                AllowlistRecord { account_id: account.clone(), cidr, label: label.clone(), created_at }
            })
            .collect();
        let unchanged =
            records.len() == old.len() && records.iter().zip(old).all(|(n, o)| n.cidr == o.cidr && n.label == o.label);
        if unchanged {
            return Ok(records);
        }
        self.store.replace_allowlist(account, &records).await?;
        self.sessions.changed(SessionChange::Account(account.clone())).await;
        let mut details = format!("{} entries", records.len());
        for (i, r) in records.iter().enumerate() {
            details.push_str(if i == 0 { ": " } else { ", " });
            details.push_str(&r.cidr);
        }
        self.auditor.record(AuditEvent::user(AuditKind::AllowlistChanged, account).details(details), ctx).await;
        self.notices.notify(account, Notice::AllowlistChanged { entries: records.len() }, ctx).await;
        Ok(records)
    }

    /// Lifts an account's list on the operator's behalf: the way back in
    /// for an owner who locked themselves out. Audited with the actor; the
    /// account is mailed. How many entries there were.
    pub async fn clear(&self, account: &AccountId, actor: Actor, ctx: &RequestContext) -> Result<usize, StoreError> {
        let old = self.store.allowlist(account).await?;
        if old.is_empty() {
            return Ok(0);
        }
        self.store.replace_allowlist(account, &[]).await?;
        self.sessions.changed(SessionChange::Account(account.clone())).await;
        let details = format!("cleared {} entries by {}", old.len(), actor.as_str());
        let event = AuditEvent::user(AuditKind::AllowlistChanged, account).actor(actor).details(details);
        self.auditor.record(event, ctx).await;
        self.notices.notify(account, Notice::AllowlistChanged { entries: 0 }, ctx).await;
        Ok(old.len())
    }
}

#[cfg(test)]
#[path = "allowlists_tests.rs"]
mod tests;
