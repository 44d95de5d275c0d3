//! Organisations (stories P1, seed 003): owners and members, and the
//! owner's switch that requires 2FA of every member.
//!
//! Members are added directly by e-mail when the account exists (no
//! invitation round-trip: the owner already knows the person, and an
//! unknown address gets the same 404 as a mistyped one). An organisation
//! always keeps an owner: the store refuses, atomically, to remove or
//! demote the last one. A non-member sees 404 for an organisation, never
//! 403, so ids cannot be probed.

use crate::audit::{AuditKind, RequestContext};
use crate::email::Email;
use crate::error::{InternalError, StoreError};
use crate::ids::AccountId;
use crate::ports::{MemberRecord, MembershipChange, OrgRecord, OrgRole};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("no such organisation")]
    NotFound,
    #[error("no account with this e-mail address")]
    AccountNotFound,
    #[error("only owners of the organisation may do this")]
    NotOwner,
    #[error("this organisation requires two-factor authentication: turn it on first")]
    TwoFactorRequired,
    #[error("every owner must have two-factor authentication on first")]
    OwnersWithoutTwoFactor { owners: Vec<String> },
    #[error("already a member")]
    AlreadyMember,
    #[error("an organisation must keep at least one owner")]
    LastOwner,
    #[error("names are 1 to 100 characters")]
    InvalidName,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for OrgError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// An organisation as its members see it.
#[derive(Clone, Debug)]
pub struct OrgView {
    pub org: OrgRecord,
    pub my_role: OrgRole,
    pub members: Vec<MemberRecord>,
}

fn valid_name(name: &str) -> Result<String, OrgError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(OrgError::InvalidName);
    }
    Ok(name.to_owned())
}

impl Twostep {
    pub async fn create_org(&self, me: &SignedIn, name: &str, ctx: &RequestContext) -> Result<OrgRecord, OrgError> {
        let org = OrgRecord {
            id: crate::ids::AuthenticatorId::generate(self.rng()).to_string(),
            name: valid_name(name)?,
            require_two_factor: false,
            created_at: self.now(),
        };
        self.store.insert_org(&org, &me.account.id).await?;
        self.audit(AuditEvent::user(AuditKind::OrgCreated, &me.account.id).details(format!("org {}", org.id)), ctx)
            .await;
        Ok(org)
    }

    pub async fn orgs_of(&self, me: &SignedIn) -> Result<Vec<(OrgRecord, OrgRole)>, OrgError> {
        Ok(self.store.orgs_of(&me.account.id).await?)
    }

    /// The caller's role, or `NotFound` for a non-member.
    async fn membership(&self, me: &SignedIn, org: &str) -> Result<(OrgRecord, OrgRole), OrgError> {
        let Some(role) = self.store.role_in(org, &me.account.id).await? else { return Err(OrgError::NotFound) };
        let record = self.store.org(org).await?.ok_or(OrgError::NotFound)?;
        Ok((record, role))
    }

    /// Membership plus the organisation's own rule: while it requires 2FA,
    /// a member without it reaches nothing of the organisation.
    async fn admitted(&self, me: &SignedIn, org: &str) -> Result<(OrgRecord, OrgRole), OrgError> {
        let (record, role) = self.membership(me, org).await?;
        if record.require_two_factor && self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(OrgError::TwoFactorRequired);
        }
        Ok((record, role))
    }

    async fn as_owner(&self, me: &SignedIn, org: &str) -> Result<OrgRecord, OrgError> {
        match self.admitted(me, org).await? {
            (record, OrgRole::Owner) => Ok(record),
            (_, OrgRole::Member) => Err(OrgError::NotOwner),
        }
    }

    pub async fn org_view(&self, me: &SignedIn, org: &str) -> Result<OrgView, OrgError> {
        let (record, my_role) = self.admitted(me, org).await?;
        let members = self.store.members(&record.id).await?;
        Ok(OrgView { org: record, my_role, members })
    }

    /// Adds an existing account (owners only).
    pub async fn add_member(
        &self,
        me: &SignedIn,
        org: &str,
        email: &str,
        role: OrgRole,
        ctx: &RequestContext,
    ) -> Result<MemberRecord, OrgError> {
        let record = self.as_owner(me, org).await?;
        let email = Email::parse(email).map_err(|_| OrgError::AccountNotFound)?;
        let account = self.store.account_by_email(&email).await?.ok_or(OrgError::AccountNotFound)?;
        let now = self.now();
        match self.store.add_member(&record.id, &account.id, role, now).await {
            Err(StoreError::Conflict) => return Err(OrgError::AlreadyMember),
            other => other?,
        }
        self.audit(
            AuditEvent::user(AuditKind::OrgMemberAdded, &me.account.id).details(format!(
                "org {}: {} as {}",
                record.id,
                account.id,
                role.as_str()
            )),
            ctx,
        )
        .await;
        let two_factor_enabled = !self.store.authenticators(&account.id).await?.is_empty();
        Ok(MemberRecord { account_id: account.id, email: account.email, role, two_factor_enabled, added_at: now })
    }

    /// Changes a member's role (owners only); ownership moves by promoting
    /// another member, then stepping down.
    pub async fn set_member_role(
        &self,
        me: &SignedIn,
        org: &str,
        account: &str,
        role: OrgRole,
        ctx: &RequestContext,
    ) -> Result<(), OrgError> {
        let record = self.as_owner(me, org).await?;
        let target = AccountId::from_stored(account);
        match self.store.set_role(&record.id, &target, role).await? {
            MembershipChange::Done => {}
            MembershipChange::NotMember => return Err(OrgError::NotFound),
            MembershipChange::LastOwner => return Err(OrgError::LastOwner),
        }
        self.audit(
            AuditEvent::user(AuditKind::OrgRoleChanged, &me.account.id).details(format!(
                "org {}: {target} now {}",
                record.id,
                role.as_str()
            )),
            ctx,
        )
        .await;
        Ok(())
    }

    /// Removes a member (owners), or leaves (anyone, for themselves).
    pub async fn remove_member(
        &self,
        me: &SignedIn,
        org: &str,
        account: &str,
        ctx: &RequestContext,
    ) -> Result<(), OrgError> {
        let target = AccountId::from_stored(account);
        let record = if target == me.account.id {
            // Leaving is always possible, even without the 2FA the
            // organisation requires.
            self.membership(me, org).await?.0
        } else {
            self.as_owner(me, org).await?
        };
        match self.store.remove_member(&record.id, &target).await? {
            MembershipChange::Done => {}
            MembershipChange::NotMember => return Err(OrgError::NotFound),
            MembershipChange::LastOwner => return Err(OrgError::LastOwner),
        }
        self.audit(
            AuditEvent::user(AuditKind::OrgMemberRemoved, &me.account.id)
                .details(format!("org {}: {target}", record.id)),
            ctx,
        )
        .await;
        Ok(())
    }

    /// The "Require two-factor" switch (owners only), refused while any
    /// owner lacks 2FA: owners must not lock themselves out of their rule.
    pub async fn set_org_two_factor(
        &self,
        me: &SignedIn,
        org: &str,
        require: bool,
        ctx: &RequestContext,
    ) -> Result<bool, OrgError> {
        let record = self.as_owner(me, org).await?;
        if require {
            let owners: Vec<String> = self
                .store
                .members(&record.id)
                .await?
                .into_iter()
                .filter(|m| m.role == OrgRole::Owner && !m.two_factor_enabled)
                .map(|m| m.email.to_string())
                .collect();
            if !owners.is_empty() {
                return Err(OrgError::OwnersWithoutTwoFactor { owners });
            }
        }
        self.store.set_require_two_factor(&record.id, require).await?;
        self.audit(
            AuditEvent::user(AuditKind::PolicyChanged, &me.account.id).details(format!(
                "org {}: require two-factor {}",
                record.id,
                if require { "on" } else { "off" }
            )),
            ctx,
        )
        .await;
        Ok(require)
    }
}
