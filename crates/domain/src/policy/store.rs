//! What organisations, the administration and IP allow-lists need from
//! storage.

use async_trait::async_trait;

use crate::accounts::email::Email;
use crate::error::StoreError;
use crate::ids::AccountId;

use crate::accounts::store::AccountRecord;
use crate::time::Timestamp;

/// A member's role. An organisation always keeps at least one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgRole {
    Owner,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    pub require_two_factor: bool,
    /// Members may not register synced (backup-eligible) passkeys.
    pub refuse_synced_passkeys: bool,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct MemberRecord {
    pub account_id: AccountId,
    pub email: Email,
    pub role: OrgRole,
    /// Whether the account has any second factor.
    pub two_factor_enabled: bool,
    pub added_at: Timestamp,
}

/// Why a membership change was refused, or that it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    Done,
    NotMember,
    /// It would leave the organisation without an owner.
    LastOwner,
}

/// A pending invitation to an organisation, addressed to an e-mail address
/// (whether or not an account has it).
#[derive(Clone, Debug)]
pub struct InvitationRecord {
    pub id: String,
    pub org_id: String,
    pub email: Email,
    pub role: OrgRole,
    pub invited_by: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An invitation with what its lists show: the organisation's name and the
/// inviting owner's address.
#[derive(Clone, Debug)]
pub struct InvitationView {
    pub invitation: InvitationRecord,
    pub org_name: String,
    pub invited_by_email: Email,
}

/// The outcome of accepting an invitation.
#[derive(Clone, Debug)]
pub enum Acceptance {
    /// The invitation was used up and the account is now a member.
    Joined(InvitationRecord),
    /// The invitation was used up, but the account already was a member.
    AlreadyMember(InvitationRecord),
    /// No pending invitation with this id for the account's verified address.
    NotFound,
}

#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates the organisation with `owner` as its first owner, in one transaction.
    async fn insert_org(&self, org: &OrgRecord, owner: &AccountId) -> Result<(), StoreError>;
    async fn org(&self, id: &str) -> Result<Option<OrgRecord>, StoreError>;
    /// The account's organisations and its role in each, by name.
    async fn orgs_of(&self, account: &AccountId) -> Result<Vec<(OrgRecord, OrgRole)>, StoreError>;
    /// Members with their e-mail and 2FA status, owners first, then by e-mail.
    async fn members(&self, org: &str) -> Result<Vec<MemberRecord>, StoreError>;
    async fn role_in(&self, org: &str, account: &AccountId) -> Result<Option<OrgRole>, StoreError>;
    /// Changes a role, refusing to demote the last owner (atomically).
    async fn set_role(&self, org: &str, account: &AccountId, role: OrgRole) -> Result<MembershipChange, StoreError>;
    /// Removes a member, refusing to remove the last owner (atomically).
    async fn remove_member(&self, org: &str, account: &AccountId) -> Result<MembershipChange, StoreError>;
    async fn set_require_two_factor(&self, org: &str, require: bool) -> Result<(), StoreError>;
    async fn set_refuse_synced_passkeys(&self, org: &str, refuse: bool) -> Result<(), StoreError>;
    /// The account's organisations that refuse synced passkeys, by name.
    async fn orgs_refusing_synced_passkeys(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError>;
    /// Whether any organisation of the account requires 2FA.
    async fn org_requires_two_factor(&self, account: &AccountId) -> Result<bool, StoreError>;
    /// The organisations that require 2FA of this member, by name.
    async fn orgs_requiring_two_factor(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError>;
    /// Stores an invitation, replacing (renewing) the pending one of the same
    /// organisation and address; deletes the organisation's expired ones.
    async fn upsert_invitation(&self, invitation: &InvitationRecord, now: Timestamp) -> Result<(), StoreError>;
    /// Pending (unexpired) invitations to this address, oldest first.
    async fn invitations_for(&self, email: &Email, now: Timestamp) -> Result<Vec<InvitationView>, StoreError>;
    /// Pending (unexpired) invitations of an organisation, oldest first.
    async fn org_invitations(&self, org: &str, now: Timestamp) -> Result<Vec<InvitationView>, StoreError>;
    /// Uses up the pending invitation `id` to the account's current address,
    /// only while that address is verified, and adds the account as a member
    /// with its role, in one transaction: of two concurrent accepts only one
    /// finds the invitation. The address and its verification are read in
    /// the statement that takes the invitation, never from the caller.
    async fn accept_invitation(&self, id: &str, account: &AccountId, now: Timestamp) -> Result<Acceptance, StoreError>;
    /// Deletes the pending invitation `id` to the account's current, verified
    /// address; `None` when there is none.
    async fn decline_invitation(
        &self,
        id: &str,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Option<InvitationRecord>, StoreError>;
    /// Deletes invitation `id` of `org` (an owner's revoke); whether there was one.
    async fn revoke_invitation(&self, org: &str, id: &str) -> Result<Option<InvitationRecord>, StoreError>;
    /// Deletes invitations that expired at or before `before`; how many.
    async fn purge_invitations(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Which accounts the admin's user list shows.
#[derive(Clone, Debug, Default)]
pub struct AccountQuery {
    /// A part of the e-mail address (case-insensitive), or an exact account id.
    pub text: Option<String>,
    /// `Some(true)`: only accounts with a second factor; `Some(false)`: only without.
    pub two_factor: Option<bool>,
    pub limit: i64,
}

/// An account as the admin's user list shows it.
#[derive(Clone, Debug)]
pub struct AccountSummary {
    pub account: AccountRecord,
    /// The kinds of its second factors (`"totp"`, `"phone"`), sorted, without repeats.
    pub factor_kinds: Vec<String>,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Grants (`Some`) or revokes (`None`) the operator role. Returns whether the account exists.
    async fn set_admin(&self, id: &AccountId, since: Option<Timestamp>) -> Result<bool, StoreError>;
    /// Accounts by e-mail, with their factor kinds.
    async fn search_accounts(&self, query: &AccountQuery) -> Result<Vec<AccountSummary>, StoreError>;
}

/// One entry of an account's IP allow-list, as stored; `cidr` is the
/// normalised text of an `allowlist::IpRange`.
#[derive(Clone, Debug)]
pub struct AllowlistRecord {
    pub account_id: AccountId,
    pub cidr: String,
    pub label: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait AllowlistStore: Send + Sync {
    /// The account's entries, in the order they were saved.
    async fn allowlist(&self, account: &AccountId) -> Result<Vec<AllowlistRecord>, StoreError>;
    /// Replaces the account's list with `entries`, in this order, in one transaction.
    async fn replace_allowlist(&self, account: &AccountId, entries: &[AllowlistRecord]) -> Result<(), StoreError>;
}
