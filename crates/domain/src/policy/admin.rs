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

use crate::accounts::store::AccountRecord;
use crate::audit::{Actor, AuditEntry, RequestContext};
use crate::error::{AccountError, FactorError, InternalError, StoreError};
use crate::ids::AccountId;
use crate::policy::administration::{By, is_admin};
use crate::policy::store::{AccountQuery, AccountSummary};
use crate::service::Twostep;
use crate::sessions::SignedIn;
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

impl Twostep {
    /// Whether the account holds the operator role.
    pub fn is_admin(account: &AccountRecord) -> bool {
        is_admin(account)
    }

    /// The caller as an administrator (see `Administration::check`).
    pub async fn admin_check(&self, me: &SignedIn) -> Result<(), AdminError> {
        self.admin.check(me).await
    }

    /// Accounts by e-mail with their second factors.
    pub async fn admin_users(&self, me: &SignedIn, query: &AccountQuery) -> Result<Vec<AccountSummary>, AdminError> {
        self.admin.users(me, query).await
    }

    /// One account with its second factors.
    pub async fn admin_user(&self, me: &SignedIn, id: &AccountId) -> Result<AccountSummary, AdminError> {
        self.admin.user(me, id).await
    }

    /// Everyone's audit log, newest first.
    pub async fn admin_audit(&self, me: &SignedIn, search: &AuditSearch<'_>) -> Result<Vec<AuditEntry>, AdminError> {
        self.admin.audit(me, search).await
    }

    /// The target of an admin change, after every check: the policy
    /// refusals, then a recent re-auth (§2.7).
    async fn admin_target(&self, me: &SignedIn, id: &AccountId) -> Result<AccountRecord, AdminError> {
        let target = self.admin.target(me, id).await?;
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
        self.admin.wipe_second_factors(&target, By::admin(me), ctx).await?;
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
        self.admin.apply_disabled(&target, disabled, By::admin(me), ctx).await?;
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
        self.admin.wipe_second_factors(&account, By::operator(actor), ctx).await?;
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
        self.admin.set_admin(&account, grant, actor, ctx).await
    }

    /// The accounts holding the operator role.
    pub async fn admins(&self) -> Result<Vec<AccountRecord>, AccountError> {
        Ok(self.store.list_accounts(i64::MAX).await?.into_iter().filter(is_admin).collect())
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
