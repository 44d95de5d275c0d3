//! `Administration`: the narrow service behind the operator role (see
//! `admin.rs` for the rules as users meet them). It holds the admin store,
//! the accounts, the factors it may wipe, remembered browsers, the
//! throttles it clears, sessions, the audit log and notices. Re-auth before
//! a change is the caller's (`Twostep::admin_*`), after this service's
//! policy refusals (§2.7).

use std::sync::Arc;

use crate::abuse::throttle::Scope;
use crate::abuse::throttles::Throttles;
use crate::accounts::email::Email;
use crate::accounts::store::{AccountRecord, AccountStore, CredentialStore};
use crate::audit::{Actor, AuditEntry, AuditEvent, AuditFilter, AuditKind, Auditor, RequestContext};
use crate::error::{AccountError, StoreError};
use crate::factors::store::FactorStore;
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::policy::admin::{AdminError, AuditSearch, parse_instant};
use crate::policy::store::{AccountQuery, AccountSummary, AdminStore};
use crate::ports::Clock;
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::sessions::service::Sessions;
use crate::time::Timestamp;

/// Who made a change, for the audit entry.
pub(crate) struct By {
    actor: Actor,
    details: String,
}

impl By {
    pub fn admin(me: &SignedIn) -> Self {
        Self { actor: Actor::Admin, details: format!("by admin {}", me.account.id) }
    }

    pub fn operator(actor: Actor) -> Self {
        Self { actor, details: "by the operator".to_owned() }
    }
}

/// The factor counters an admin reset clears, every factor's: the
/// password's stays (a locked password is unlocked by a reset link or
/// `twostep user unlock`).
fn factor_scopes(account: &AccountId) -> Vec<Scope> {
    crate::factors::registry::standard().counters(account)
}

pub(crate) struct Administration {
    pub store: Arc<dyn AdminStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub factors: Arc<dyn FactorStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub throttles: Arc<Throttles>,
    pub sessions: Arc<Sessions>,
    pub auditor: Arc<Auditor>,
    pub notices: Arc<Notices>,
    pub clock: Arc<dyn Clock>,
}

/// Whether the account holds the operator role.
pub(crate) fn is_admin(account: &AccountRecord) -> bool {
    account.admin_since.is_some()
}

impl Administration {
    /// The caller as an administrator: the role, and 2FA on (SEC-62). The
    /// role is read from the account row, never from the session as the
    /// session cache kept it: it is granted and revoked on the command
    /// line, another process, and a revoked administrator must not get the
    /// milliseconds its announcement takes.
    pub async fn check(&self, me: &SignedIn) -> Result<(), AdminError> {
        let account = self.accounts.account_by_id(&me.account.id).await?;
        if !account.as_ref().is_some_and(is_admin) {
            return Err(AdminError::NotAdmin);
        }
        if self.factors.authenticators(&me.account.id).await?.is_empty() {
            return Err(AdminError::TwoFactorRequired);
        }
        Ok(())
    }

    pub async fn users(&self, me: &SignedIn, query: &AccountQuery) -> Result<Vec<AccountSummary>, AdminError> {
        self.check(me).await?;
        Ok(self.store.search_accounts(query).await?)
    }

    pub async fn user(&self, me: &SignedIn, id: &AccountId) -> Result<AccountSummary, AdminError> {
        self.check(me).await?;
        let account = self.accounts.account_by_id(id).await?.ok_or(AdminError::NotFound)?;
        let mut factor_kinds: Vec<String> =
            self.factors.authenticators(id).await?.into_iter().map(|a| a.kind).collect();
        factor_kinds.sort();
        factor_kinds.dedup();
        Ok(AccountSummary { account, factor_kinds })
    }

    /// Everyone's audit log, newest first.
    pub async fn audit(&self, me: &SignedIn, search: &AuditSearch<'_>) -> Result<Vec<AuditEntry>, AdminError> {
        self.check(me).await?;
        let bound = |v: Option<&str>, name: &str, end: bool| -> Result<Option<Timestamp>, AdminError> {
            v.map(|v| {
                parse_instant(v, end).ok_or_else(|| {
                    AdminError::InvalidFilter(format!("{name} must be an RFC 3339 time or a date like 2026-05-01"))
                })
            })
            .transpose()
        };
        let (since, until) = (bound(search.since, "since", false)?, bound(search.until, "until", true)?);
        let account_id = match search.user {
            None => None,
            Some(u) if u.contains('@') => {
                // An address with no account matches nothing.
                let found = match Email::parse(u) {
                    Ok(email) => self.accounts.account_by_email(&email).await?,
                    Err(_) => None,
                };
                let Some(a) = found else { return Ok(Vec::new()) };
                Some(a.id)
            }
            Some(id) => Some(AccountId::from_stored(id)),
        };
        let filter = AuditFilter {
            account_id,
            kind: search.event.map(str::to_owned),
            since,
            until,
            limit: search.limit.clamp(1, 1000),
            ..AuditFilter::default()
        };
        Ok(self.auditor.entries(&filter).await?)
    }

    /// The target of an admin change, after the policy refusals: admin with
    /// 2FA, the account exists and is not the caller's.
    pub async fn target(&self, me: &SignedIn, id: &AccountId) -> Result<AccountRecord, AdminError> {
        self.check(me).await?;
        let target = self.accounts.account_by_id(id).await?.ok_or(AdminError::NotFound)?;
        if target.id == me.account.id {
            return Err(AdminError::OwnAccount);
        }
        Ok(target)
    }

    /// Every factor, recovery code and remembered browser goes, every
    /// session ends, the factor counters start over; audited and mailed.
    pub async fn wipe_second_factors(
        &self,
        account: &AccountRecord,
        by: By,
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        let had = self.factors.authenticators(&account.id).await?.len();
        self.factors.delete_all_factors(&account.id).await?;
        self.credentials.delete_remembered_of(&account.id).await?;
        let sessions = self.sessions.end_all_of(&account.id, None).await?;
        self.throttles.reset(&factor_scopes(&account.id)).await?;
        let details = format!("{}; factors removed: {had}; sessions ended: {sessions}", by.details);
        let event = AuditEvent::user(AuditKind::TwoFactorReset, &account.id).actor(by.actor).details(details);
        self.auditor.record(event, ctx).await;
        self.notices.notify(&account.id, Notice::AdminReset, ctx).await;
        Ok(())
    }

    /// Disables (ending its sessions) or enables an account; nothing when
    /// it already is.
    pub async fn apply_disabled(
        &self,
        account: &AccountRecord,
        disabled: bool,
        by: By,
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        if account.disabled_at.is_some() == disabled {
            return Ok(());
        }
        self.accounts.set_disabled(&account.id, disabled.then(|| self.clock.now())).await?;
        self.sessions.changed(SessionChange::Account(account.id.clone())).await;
        let mut details = by.details;
        if disabled {
            let n = self.sessions.end_all_of(&account.id, None).await?;
            details = format!("{details}; sessions ended: {n}");
        }
        let kind = if disabled { AuditKind::AccountDisabled } else { AuditKind::AccountEnabled };
        self.auditor.record(AuditEvent::user(kind, &account.id).actor(by.actor).details(details), ctx).await;
        Ok(())
    }

    /// Grants or revokes the operator role; granting again keeps the
    /// original date.
    pub async fn set_admin(
        &self,
        account: &AccountRecord,
        grant: bool,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        if is_admin(account) == grant {
            return Ok(account.clone());
        }
        let since = grant.then(|| self.clock.now());
        if !self.store.set_admin(&account.id, since).await? {
            return Err(AccountError::NotFound);
        }
        self.sessions.changed(SessionChange::Account(account.id.clone())).await;
        let kind = if grant { AuditKind::AdminGranted } else { AuditKind::AdminRevoked };
        let by = By::operator(actor);
        self.auditor.record(AuditEvent::user(kind, &account.id).actor(by.actor).details(by.details), ctx).await;
        self.accounts.account_by_id(&account.id).await?.ok_or(AccountError::NotFound)
    }
}

#[cfg(test)]
#[path = "administration_tests.rs"]
mod tests;
