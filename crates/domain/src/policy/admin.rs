//! Administration (issue 6): the operator role, resetting a user's second
//! factors, disabling accounts, and reading everyone's audit log.
//!
//! There is no administrator by default (SEC-10): the first is granted on
//! the command line (`twostep admin grant EMAIL`), which is also the only
//! way to grant or revoke the role. An administrator acting over HTTP needs
//! 2FA on their own account (SEC-62) and, for every change, a recent
//! re-auth (§2.7). To everyone else the admin area does not exist: a
//! non-admin gets "not found", never "forbidden", so it cannot be probed.
//! An administrator cannot reset or disable their own account here; the
//! Security page (or the CLI) is the place for that, and it keeps an
//! operator from locking themselves out by a slip.
//!
//! Every change is audited with its actor: `admin` (with the admin's account
//! id in the details) or `cli`.

use crate::abuse::throttle::Scope;
use crate::accounts::email::Email;
use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, AuditEntry, AuditFilter, AuditKind, RequestContext};
use crate::error::{AccountError, FactorError, InternalError, StoreError};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::policy::store::{AccountQuery, AccountSummary};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::sessions::cache::SessionChange;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller is not an administrator; shown as "not found".
    #[error("not found")]
    NotAdmin,
    #[error("administrators must have two-factor authentication on: set it up on the Security page first")]
    TwoFactorRequired,
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error("no such account")]
    NotFound,
    #[error("{0}")]
    InvalidFilter(String),
    #[error("this is your own account: use the Security page (or the command line) for it")]
    OwnAccount,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<FactorError> for AdminError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::ReauthRequired => Self::ReauthRequired,
            FactorError::Internal(i) => Self::Internal(i),
            other => Self::Internal(InternalError(other.to_string())),
        }
    }
}

/// The admin audit log's filters, as typed; `None` or empty means "any".
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditSearch<'a> {
    /// An e-mail address or an account id.
    pub user: Option<&'a str>,
    /// An event kind (`two_factor_reset`).
    pub event: Option<&'a str>,
    /// RFC 3339 or a date; see `parse_instant`.
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub limit: i64,
}

/// Who made a change, for the audit entry.
struct By {
    actor: Actor,
    details: String,
}

impl By {
    fn admin(me: &SignedIn) -> Self {
        Self { actor: Actor::Admin, details: format!("by admin {}", me.account.id) }
    }

    fn operator(actor: Actor) -> Self {
        Self { actor, details: "by the operator".to_owned() }
    }
}

/// The factor counters an admin reset clears; the password's stays (a
/// locked password is unlocked by a reset link or `twostep user unlock`).
fn factor_scopes(account: &AccountId) -> [Scope; 5] {
    [
        Scope::SecondFactor(account.clone()),
        Scope::Totp(account.clone()),
        Scope::Phone(account.clone()),
        Scope::Email(account.clone()),
        Scope::Recovery(account.clone()),
    ]
}

impl Twostep {
    /// Whether the account holds the operator role.
    pub fn is_admin(account: &AccountRecord) -> bool {
        account.admin_since.is_some()
    }

    /// The caller as an administrator: the role, and 2FA on (SEC-62).
    ///
    /// The role is read from the account row, not from the session as the
    /// session cache kept it: it is usually granted and revoked on the
    /// command line, another process whose announcement reaches a
    /// PostgreSQL server a few milliseconds later, and a revoked
    /// administrator must not get those milliseconds. Admin requests are
    /// few; the statement is cheap.
    pub async fn admin_check(&self, me: &SignedIn) -> Result<(), AdminError> {
        let account = self.store.account_by_id(&me.account.id).await?;
        if !account.as_ref().is_some_and(Self::is_admin) {
            return Err(AdminError::NotAdmin);
        }
        if self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(AdminError::TwoFactorRequired);
        }
        Ok(())
    }

    /// Accounts by e-mail with their second factors.
    pub async fn admin_users(&self, me: &SignedIn, query: &AccountQuery) -> Result<Vec<AccountSummary>, AdminError> {
        self.admin_check(me).await?;
        Ok(self.store.search_accounts(query).await?)
    }

    /// One account with its second factors.
    pub async fn admin_user(&self, me: &SignedIn, id: &AccountId) -> Result<AccountSummary, AdminError> {
        self.admin_check(me).await?;
        let account = self.store.account_by_id(id).await?.ok_or(AdminError::NotFound)?;
        let mut factor_kinds: Vec<String> = self.store.authenticators(id).await?.into_iter().map(|a| a.kind).collect();
        factor_kinds.sort();
        factor_kinds.dedup();
        Ok(AccountSummary { account, factor_kinds })
    }

    /// Everyone's audit log, newest first.
    pub async fn admin_audit(&self, me: &SignedIn, search: &AuditSearch<'_>) -> Result<Vec<AuditEntry>, AdminError> {
        self.admin_check(me).await?;
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
                    Ok(email) => self.store.account_by_email(&email).await?,
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
        };
        Ok(self.store.entries(&filter).await?)
    }

    /// The target of an admin change, after every check: admin with 2FA,
    /// the account exists and is not the caller's (policy refusals), then
    /// a recent re-auth (§2.7: checked after policy refusals).
    async fn admin_target(&self, me: &SignedIn, id: &AccountId) -> Result<AccountRecord, AdminError> {
        self.admin_check(me).await?;
        let target = self.store.account_by_id(id).await?.ok_or(AdminError::NotFound)?;
        if target.id == me.account.id {
            return Err(AdminError::OwnAccount);
        }
        self.require_recent_auth(me).await?;
        Ok(target)
    }

    /// Removes every second factor of another account (re-auth needed).
    pub async fn admin_reset_two_factor(
        &self,
        me: &SignedIn,
        id: &AccountId,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AdminError> {
        let target = self.admin_target(me, id).await?;
        self.wipe_second_factors(&target, By::admin(me), ctx).await?;
        Ok(target)
    }

    /// Disables (ending its sessions) or enables another account (re-auth needed).
    pub async fn admin_set_disabled(
        &self,
        me: &SignedIn,
        id: &AccountId,
        disabled: bool,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AdminError> {
        let target = self.admin_target(me, id).await?;
        self.apply_disabled(&target, disabled, By::admin(me), ctx).await?;
        self.store.account_by_id(id).await?.ok_or(AdminError::NotFound)
    }

    /// `twostep user reset-2fa EMAIL`.
    pub async fn reset_two_factor(
        &self,
        email: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let account = self.account_by_email(email).await?;
        self.wipe_second_factors(&account, By::operator(actor), ctx).await?;
        Ok(account)
    }

    /// `twostep admin grant|revoke EMAIL`. Granting an administrator again
    /// keeps the original date.
    pub async fn set_admin(
        &self,
        email: &str,
        grant: bool,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<AccountRecord, AccountError> {
        let account = self.account_by_email(email).await?;
        if Self::is_admin(&account) == grant {
            return Ok(account);
        }
        let since = grant.then(|| self.now());
        if !self.store.set_admin(&account.id, since).await? {
            return Err(AccountError::NotFound);
        }
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        let kind = if grant { AuditKind::AdminGranted } else { AuditKind::AdminRevoked };
        let by = By::operator(actor);
        self.audit(AuditEvent::user(kind, &account.id).actor(by.actor).details(by.details), ctx).await;
        self.account(&account.id).await
    }

    /// The accounts holding the operator role.
    pub async fn admins(&self) -> Result<Vec<AccountRecord>, AccountError> {
        Ok(self.store.list_accounts(i64::MAX).await?.into_iter().filter(Self::is_admin).collect())
    }

    /// Every factor, recovery code and remembered browser goes, every
    /// session ends, the factor counters start over; audited and mailed.
    async fn wipe_second_factors(
        &self,
        account: &AccountRecord,
        by: By,
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        let had = self.store.authenticators(&account.id).await?.len();
        self.store.delete_all_factors(&account.id).await?;
        self.forget_all_browsers(&account.id).await?;
        let sessions = self.store.delete_sessions_of(&account.id, None).await?;
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        self.throttle_reset(&factor_scopes(&account.id)).await?;
        let details = format!("{}; factors removed: {had}; sessions ended: {sessions}", by.details);
        self.audit(AuditEvent::user(AuditKind::TwoFactorReset, &account.id).actor(by.actor).details(details), ctx)
            .await;
        self.notify(&account.id, Notice::AdminReset, ctx).await;
        Ok(())
    }

    async fn apply_disabled(
        &self,
        account: &AccountRecord,
        disabled: bool,
        by: By,
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        if account.disabled_at.is_some() == disabled {
            return Ok(());
        }
        self.store.set_disabled(&account.id, disabled.then(|| self.now())).await?;
        self.sessions_changed(SessionChange::Account(account.id.clone())).await;
        let mut details = by.details;
        if disabled {
            let n = self.store.delete_sessions_of(&account.id, None).await?;
            self.sessions_changed(SessionChange::Account(account.id.clone())).await;
            details = format!("{details}; sessions ended: {n}");
        }
        let kind = if disabled { AuditKind::AccountDisabled } else { AuditKind::AccountEnabled };
        self.audit(AuditEvent::user(kind, &account.id).actor(by.actor).details(details), ctx).await;
        Ok(())
    }
}

/// An audit filter's bound: an RFC 3339 instant (`2026-05-01T12:00:00Z`) or
/// a UTC date (`2026-05-01`). A date means the start of that day, or with
/// `end_of_day` the start of the next, so `until=2026-05-01` includes the
/// whole day.
pub fn parse_instant(s: &str, end_of_day: bool) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(Timestamp::from_secs(t.unix_timestamp()));
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let date = if end_of_day { date.next_day()? } else { date };
    Some(Timestamp::from_secs(date.midnight().assume_utc().unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn bounds_take_an_instant_or_a_whole_day() {
        assert_eq!(parse_instant("1970-01-01T00:01:00Z", false).map(crate::time::Timestamp::secs), Some(60));
        assert_eq!(parse_instant("1970-01-02", false).map(crate::time::Timestamp::secs), Some(86_400));
        assert_eq!(parse_instant("1970-01-02", true).map(crate::time::Timestamp::secs), Some(2 * 86_400));
        assert_eq!(parse_instant("yesterday", false), None);
        assert_eq!(parse_instant("2026-02-30", false), None);
    }
}
