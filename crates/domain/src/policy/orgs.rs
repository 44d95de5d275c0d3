//! Organisations (stories P1, seed 003; issue 14): owners and members, the
//! owner's switch that requires 2FA of every member, and membership by
//! invitation.
//!
//! Nobody becomes a member without saying yes: an owner invites an e-mail
//! address, the holder accepts or declines. The invite answers alike for
//! every well-formed address and does the same work whether or not an
//! account has it (one row, one mail saying "sign in, or sign up with this
//! address"), so it tells the owner nothing about who has an account here;
//! it is capped per owner and organisation (`INVITES_PER_HOUR`) so it is
//! neither a mail cannon nor a fast probe. An invitation lives 7 days, is
//! addressed to the normalised address, so an account created later with
//! that address finds it, and owners may revoke it.
//!
//! Only the proven holder of the address answers: sign-up does not wait for
//! the address to be verified, so an account may carry an address its owner
//! never received mail at. Such an account sees the invitations to it but
//! may neither accept (that would put a stranger in the organisation) nor
//! decline (that would void the real invitee's invitation and tell the
//! owners something untrue) until its address is verified; the store matches
//! the account's current, verified address in the same statement that uses
//! the invitation up. Expired invitations are swept a day after they expire.
//!
//! An organisation always keeps an owner: the store refuses, atomically, to
//! remove or demote the last one. A non-member sees 404 for an
//! organisation, never 403, so ids cannot be probed. A member may always
//! leave, even from an enrolment-only session.

use std::sync::Arc;

use crate::abuse::store::ThrottleStore;
use crate::accounts::email::Email;
use crate::audit::{AuditEvent, AuditKind, Auditor, RequestContext};
use crate::error::{InternalError, StoreError};
use crate::factors::store::FactorStore;
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::notify::notices::Notices;
use crate::notify::outbox::Outbox;
use crate::policy::store::{
    Acceptance, InvitationRecord, InvitationView, MemberRecord, MembershipChange, OrgRecord, OrgRole, OrgStore,
};
use crate::ports::{Clock, Rng};
use crate::service::Twostep;
use crate::sessions::SignedIn;

const MAX_NAME_CHARS: usize = 100;
/// How long an invitation can be accepted.
pub const INVITATION_SECS: i64 = 7 * 24 * 60 * 60;
/// Invitations one owner may send for one organisation per hour: a team
/// on-boarding at a sensible pace, not a mail cannon.
pub const INVITES_PER_HOUR: i64 = 20;
const INVITE_WINDOW_SECS: i64 = 60 * 60;
/// An invitation mail stays worth sending for a day, like a notice.
const INVITE_MAIL_SECS: i64 = 24 * 60 * 60;
/// How long after expiring an invitation is swept. Every read already
/// ignores expired rows, so the sweep only keeps the table from growing; the
/// margin keeps it clear of clock skew between instances.
pub const KEEP_EXPIRED_INVITATIONS_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("no such organisation")]
    NotFound,
    #[error("enter an e-mail address like name@example.com")]
    InvalidEmail,
    #[error("too many invitations: try again later")]
    Throttled { retry_after: i64 },
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
    #[error("verify your e-mail address to accept or decline this invitation")]
    EmailUnverified,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for OrgError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the "Require two-factor" switch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwoFactorSwitch {
    pub required: bool,
    /// Members without a second factor when the switch was set.
    pub lacking: usize,
    /// Of those, how many were told now (each is told once per
    /// organisation, however often the switch is turned on).
    pub told: usize,
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

/// The narrow service over `OrgStore`: membership, invitations and the
/// organisation's 2FA rule. It reads a member's factors only to know
/// whether it has one, and counts invitations in the shared allowances.
pub struct Orgs {
    pub(crate) store: Arc<dyn OrgStore>,
    pub(crate) factors: Arc<dyn FactorStore>,
    pub(crate) allowances: Arc<dyn ThrottleStore>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) notices: Arc<Notices>,
    pub(crate) auditor: Arc<Auditor>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    /// Where invitation mails send people.
    pub(crate) public_url: String,
}

impl Orgs {
    pub async fn create_org(&self, me: &SignedIn, name: &str, ctx: &RequestContext) -> Result<OrgRecord, OrgError> {
        let org = OrgRecord {
            id: crate::ids::AuthenticatorId::generate(self.rng.as_ref()).to_string(),
            name: valid_name(name)?,
            require_two_factor: false,
            refuse_synced_passkeys: false,
            created_at: self.clock.now(),
        };
        self.store.insert_org(&org, &me.account.id).await?;
        self.auditor
            .record(AuditEvent::user(AuditKind::OrgCreated, &me.account.id).details(format!("org {}", org.id)), ctx)
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
        if record.require_two_factor && self.factors.authenticators(&me.account.id).await?.is_empty() {
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

    /// Invites an e-mail address (owners only). The same answer and the
    /// same work for every well-formed address, account or not.
    pub async fn invite(
        &self,
        me: &SignedIn,
        org: &str,
        email: &str,
        role: OrgRole,
        ctx: &RequestContext,
    ) -> Result<InvitationRecord, OrgError> {
        let record = self.as_owner(me, org).await?;
        let email = Email::parse(email).map_err(|_| OrgError::InvalidEmail)?;
        // Members are listed to owners anyway: saying so discloses nothing.
        if self.store.members(&record.id).await?.iter().any(|m| m.email == email) {
            return Err(OrgError::AlreadyMember);
        }
        // The scope does not end in the account id, so clearing an
        // account's sign-in counters (`reset_counters_of`) leaves it alone.
        let scope = format!("invite:{}:{}", me.account.id, record.id);
        let now = self.clock.now();
        if let Some(retry_after) =
            self.allowances.take_allowance(&scope, now, INVITE_WINDOW_SECS, INVITES_PER_HOUR).await?
        {
            crate::meters::throttle_refusal(crate::meters::cap::INVITATION);
            self.auditor
                .record(
                    AuditEvent::user(AuditKind::Throttled, &me.account.id)
                        .failed()
                        .details(format!("org {}: invitations", record.id)),
                    ctx,
                )
                .await;
            return Err(OrgError::Throttled { retry_after });
        }
        let invitation = InvitationRecord {
            id: crate::ids::AuthenticatorId::generate(self.rng.as_ref()).to_string(),
            org_id: record.id.clone(),
            email,
            role,
            invited_by: me.account.id.clone(),
            created_at: now,
            expires_at: now.plus_secs(INVITATION_SECS),
        };
        self.store.upsert_invitation(&invitation, now).await?;
        self.mail_invitation(me, &record, &invitation).await;
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgInvitationSent, &me.account.id).details(format!(
                    "org {}: invitation {} as {}",
                    record.id,
                    invitation.id,
                    role.as_str()
                )),
                ctx,
            )
            .await;
        Ok(invitation)
    }

    /// One text for every address: whether it has an account here is not
    /// for this mail (nor its timing) to tell.
    async fn mail_invitation(&self, me: &SignedIn, org: &OrgRecord, invitation: &InvitationRecord) {
        let url = &self.public_url;
        let expires = invitation.expires_at.rfc3339();
        let body = format!(
            "{inviter} invited you to join the organisation \"{name}\" as {role}.\n\nTo accept or decline, sign in \
             at {url}/orgs. If you have no account here yet, create one with this e-mail address at {url}/signup: \
             the invitation waits for it. It expires on {day} (UTC).\n\nNobody becomes a member without \
             accepting. If you do not know {inviter}, ignore this e-mail.",
            inviter = me.account.email.as_str(),
            name = org.name,
            role = invitation.role.as_str(),
            day = expires.get(..10).unwrap_or(&expires),
        );
        let mail = crate::notify::notice::mail(
            invitation.email.as_str(),
            &format!("Invitation to join {}", org.name),
            &body,
            "You get this e-mail because an owner of the organisation typed your address.",
            None,
        );
        if let Err(e) = self.outbox.enqueue(None, &mail, self.clock.now().plus_secs(INVITE_MAIL_SECS)).await {
            tracing::error!(error = %e, "invitation mail not queued");
        }
    }

    /// The organisation's pending invitations (owners only).
    pub async fn org_invitations(&self, me: &SignedIn, org: &str) -> Result<Vec<InvitationView>, OrgError> {
        let record = self.as_owner(me, org).await?;
        Ok(self.store.org_invitations(&record.id, self.clock.now()).await?)
    }

    /// Withdraws a pending invitation (owners only).
    pub async fn revoke_invitation(
        &self,
        me: &SignedIn,
        org: &str,
        invitation: &str,
        ctx: &RequestContext,
    ) -> Result<(), OrgError> {
        let record = self.as_owner(me, org).await?;
        let Some(gone) = self.store.revoke_invitation(&record.id, invitation).await? else {
            return Err(OrgError::NotFound);
        };
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgInvitationRevoked, &me.account.id)
                    .details(format!("org {}: invitation {}", record.id, gone.id)),
                ctx,
            )
            .await;
        Ok(())
    }

    /// The pending invitations to the signed-in account's current address,
    /// verified or not (whether it may answer them is `email_verified_at`).
    pub async fn my_invitations(&self, me: &SignedIn) -> Result<Vec<InvitationView>, OrgError> {
        Ok(self.store.invitations_for(&me.account.email, self.clock.now()).await?)
    }

    /// Refuses an unverified account before it answers an invitation, and
    /// records the attempt: someone may be holding an address they do not own.
    async fn require_verified(&self, me: &SignedIn, kind: AuditKind, ctx: &RequestContext) -> Result<(), OrgError> {
        if me.account.email_verified_at.is_some() {
            return Ok(());
        }
        self.auditor
            .record(AuditEvent::user(kind, &me.account.id).failed().details("e-mail address not verified"), ctx)
            .await;
        Err(OrgError::EmailUnverified)
    }

    /// Accepts an invitation to the account's own verified address: it
    /// becomes a member with the invited role, under the organisation's
    /// rules like every member. Someone else's invitation is `NotFound`.
    pub async fn accept_invitation(
        &self,
        me: &SignedIn,
        invitation: &str,
        ctx: &RequestContext,
    ) -> Result<(OrgRecord, OrgRole), OrgError> {
        self.require_verified(me, AuditKind::OrgInvitationAccepted, ctx).await?;
        let now = self.clock.now();
        let found = match self.store.accept_invitation(invitation, &me.account.id, now).await? {
            Acceptance::NotFound => return Err(OrgError::NotFound),
            Acceptance::AlreadyMember(_) => return Err(OrgError::AlreadyMember),
            Acceptance::Joined(found) => found,
        };
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgInvitationAccepted, &me.account.id).details(format!(
                    "org {}: invitation {} as {}",
                    found.org_id,
                    found.id,
                    found.role.as_str()
                )),
                ctx,
            )
            .await;
        let org = self.store.org(&found.org_id).await?.ok_or(OrgError::NotFound)?;
        Ok((org, found.role))
    }

    /// Declines an invitation to the account's own verified address.
    pub async fn decline_invitation(
        &self,
        me: &SignedIn,
        invitation: &str,
        ctx: &RequestContext,
    ) -> Result<(), OrgError> {
        self.require_verified(me, AuditKind::OrgInvitationDeclined, ctx).await?;
        let Some(found) = self.store.decline_invitation(invitation, &me.account.id, self.clock.now()).await? else {
            return Err(OrgError::NotFound);
        };
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgInvitationDeclined, &me.account.id)
                    .details(format!("org {}: invitation {}", found.org_id, found.id)),
                ctx,
            )
            .await;
        Ok(())
    }

    /// The organisations whose rule holds this account to 2FA: what an
    /// enrolment-only session may leave.
    pub async fn orgs_requiring_two_factor(&self, me: &SignedIn) -> Result<Vec<OrgRecord>, OrgError> {
        Ok(self.store.orgs_requiring_two_factor(&me.account.id).await?)
    }

    /// Leaves an organisation; possible from any session, an enrolment-only
    /// one included, and without the 2FA the organisation requires.
    pub(crate) async fn leave(&self, me: &SignedIn, org: &str, ctx: &RequestContext) -> Result<(), OrgError> {
        let record = self.membership(me, org).await?.0;
        match self.store.remove_member(&record.id, &me.account.id).await? {
            MembershipChange::Done => {}
            MembershipChange::NotMember => return Err(OrgError::NotFound),
            MembershipChange::LastOwner => return Err(OrgError::LastOwner),
        }
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgMemberRemoved, &me.account.id)
                    .details(format!("org {}: {} left", record.id, me.account.id)),
                ctx,
            )
            .await;
        Ok(())
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
        self.auditor
            .record(
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

    /// Removes another member (owners only).
    pub(crate) async fn remove_other(
        &self,
        me: &SignedIn,
        org: &str,
        target: &AccountId,
        ctx: &RequestContext,
    ) -> Result<(), OrgError> {
        let record = self.as_owner(me, org).await?;
        match self.store.remove_member(&record.id, target).await? {
            MembershipChange::Done => {}
            MembershipChange::NotMember => return Err(OrgError::NotFound),
            MembershipChange::LastOwner => return Err(OrgError::LastOwner),
        }
        self.auditor
            .record(
                AuditEvent::user(AuditKind::OrgMemberRemoved, &me.account.id)
                    .details(format!("org {}: {target}", record.id)),
                ctx,
            )
            .await;
        Ok(())
    }

    /// The "Require two-factor" switch (owners only), refused while any
    /// owner lacks 2FA: owners must not lock themselves out of their rule.
    /// Turning it on mails each member without 2FA, once per member and
    /// organisation: the once is taken in one atomic step, so owners
    /// pressing it together, or again, send no second mail.
    pub async fn set_org_two_factor(
        &self,
        me: &SignedIn,
        org: &str,
        require: bool,
        ctx: &RequestContext,
    ) -> Result<TwoFactorSwitch, OrgError> {
        let record = self.as_owner(me, org).await?;
        let members = self.store.members(&record.id).await?;
        if require {
            let owners: Vec<String> = members
                .iter()
                .filter(|m| m.role == OrgRole::Owner && !m.two_factor_enabled)
                .map(|m| m.email.to_string())
                .collect();
            if !owners.is_empty() {
                return Err(OrgError::OwnersWithoutTwoFactor { owners });
            }
        }
        self.store.set_require_two_factor(&record.id, require).await?;
        let lacking: Vec<&MemberRecord> = members.iter().filter(|m| !m.two_factor_enabled).collect();
        self.auditor
            .record(
                AuditEvent::user(AuditKind::PolicyChanged, &me.account.id).details(format!(
                    "org {}: require two-factor {}; {} members without it",
                    record.id,
                    if require { "on" } else { "off" },
                    lacking.len()
                )),
                ctx,
            )
            .await;
        let mut told = 0;
        if require {
            for m in &lacking {
                if self.tell_once(&record, &m.account_id, ctx).await? {
                    told += 1;
                }
            }
        }
        Ok(TwoFactorSwitch { required: require, lacking: lacking.len(), told })
    }

    /// The "Refuse synced passkeys" switch (owners only). It applies to
    /// registrations from now on: keys members already have stay, for an
    /// owner to review in the members' lists rather than lock anyone out.
    pub async fn set_org_refuse_synced_passkeys(
        &self,
        me: &SignedIn,
        org: &str,
        refuse: bool,
        ctx: &RequestContext,
    ) -> Result<bool, OrgError> {
        let record = self.as_owner(me, org).await?;
        self.store.set_refuse_synced_passkeys(&record.id, refuse).await?;
        self.auditor
            .record(
                AuditEvent::user(AuditKind::PolicyChanged, &me.account.id).details(format!(
                    "org {}: refuse synced passkeys {}",
                    record.id,
                    if refuse { "on" } else { "off" }
                )),
                ctx,
            )
            .await;
        Ok(refuse)
    }

    /// Mails a member that the organisation now requires 2FA, unless it was
    /// told before. The counter's name does not end in the account id, so
    /// an operator's unlock of the account (`reset_counters_of`) keeps it.
    async fn tell_once(&self, org: &OrgRecord, account: &AccountId, ctx: &RequestContext) -> Result<bool, OrgError> {
        let scope = format!("org-2fa-told:{account}:{}:once", org.id);
        let forever = i64::MAX / 4;
        if self.allowances.take_allowance(&scope, self.clock.now(), forever, 1).await?.is_some() {
            return Ok(false);
        }
        self.notices.notify(account, Notice::OrgRequiresTwoFactor { org: org.name.clone() }, ctx).await;
        Ok(true)
    }
}

impl Twostep {
    /// Organisations, invitations and their rule.
    pub fn orgs(&self) -> &Orgs {
        &self.orgs
    }

    /// Leaves an organisation (see `Orgs::leave`). When no rule requires
    /// 2FA of the account any more, an enrolment-only session ends for a
    /// full one, as a fresh sign-in would give, under a new id (SEC-52):
    /// its token is returned.
    pub async fn leave_org(
        &self,
        me: &SignedIn,
        org: &str,
        ctx: &RequestContext,
    ) -> Result<Option<crate::token::Token>, OrgError> {
        self.orgs.leave(me, org, ctx).await?;
        let enrolling = me.session.kind == crate::sessions::store::SessionKind::Enrollment;
        if enrolling && !self.two_factor_required(&me.account.id).await? {
            return Ok(self.finish_enrollment(me).await?);
        }
        Ok(None)
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
        if target == me.account.id {
            return self.leave_org(me, org, ctx).await.map(|_| ());
        }
        self.orgs.remove_other(me, org, &target, ctx).await
    }
}

#[cfg(test)]
#[path = "orgs_tests.rs"]
mod tests;
