//! In-memory organisations, memberships and invitations, with the store's
//! atomic rules (never the last owner; an invitation used once, by the
//! verified holder of its address).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::accounts::email::Email;
use crate::accounts::store::AccountRecord;
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::policy::store::{
    Acceptance, InvitationRecord, InvitationView, MemberRecord, MembershipChange, OrgRecord, OrgRole, OrgStore,
};
use crate::testing::factors::Holders;
use crate::time::Timestamp;

#[derive(Default)]
struct Tables {
    accounts: HashMap<String, AccountRecord>,
    orgs: Vec<OrgRecord>,
    /// (org, account, role, added)
    members: Vec<(String, AccountId, OrgRole, Timestamp)>,
    invitations: Vec<InvitationRecord>,
}

/// Organisations; `holders` says who has a second factor (the members
/// list shows it, and `Orgs` asks it as its `FactorStore`).
#[derive(Default)]
pub struct MemOrgs {
    tables: Mutex<Tables>,
    pub holders: Arc<Holders>,
}

impl MemOrgs {
    fn t(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add_account(&self, account: AccountRecord) {
        self.t().accounts.insert(account.id.as_str().to_owned(), account);
    }

    /// Gives the account a second factor (or takes it away).
    pub fn set_factor(&self, account: &AccountId, has: bool) {
        self.holders.set(account, has);
    }

    pub fn invitation_count(&self) -> usize {
        self.t().invitations.len()
    }

    fn owners(t: &Tables, org: &str) -> usize {
        t.members.iter().filter(|(o, _, r, _)| o == org && *r == OrgRole::Owner).count()
    }

    fn view(t: &Tables, i: &InvitationRecord) -> InvitationView {
        let org_name = t.orgs.iter().find(|o| o.id == i.org_id).map(|o| o.name.clone()).unwrap_or_default();
        let invited_by_email = t.accounts[i.invited_by.as_str()].email.clone();
        InvitationView { invitation: i.clone(), org_name, invited_by_email }
    }

    /// The invitation `id` to the account's verified address, if pending.
    fn addressed(t: &Tables, id: &str, account: &AccountId, now: Timestamp) -> Option<usize> {
        let a = t.accounts.get(account.as_str()).filter(|a| a.email_verified_at.is_some())?;
        t.invitations.iter().position(|i| i.id == id && i.email == a.email && now < i.expires_at)
    }
}

#[async_trait]
impl OrgStore for MemOrgs {
    async fn insert_org(&self, org: &OrgRecord, owner: &AccountId) -> Result<(), StoreError> {
        let mut t = self.t();
        t.orgs.push(org.clone());
        t.members.push((org.id.clone(), owner.clone(), OrgRole::Owner, org.created_at));
        Ok(())
    }

    async fn org(&self, id: &str) -> Result<Option<OrgRecord>, StoreError> {
        Ok(self.t().orgs.iter().find(|o| o.id == id).cloned())
    }

    async fn orgs_of(&self, account: &AccountId) -> Result<Vec<(OrgRecord, OrgRole)>, StoreError> {
        let t = self.t();
        let mut found: Vec<(OrgRecord, OrgRole)> = t
            .members
            .iter()
            .filter(|(_, a, _, _)| a == account)
            .filter_map(|(o, _, r, _)| t.orgs.iter().find(|x| x.id == *o).map(|x| (x.clone(), *r)))
            .collect();
        found.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(found)
    }

    async fn members(&self, org: &str) -> Result<Vec<MemberRecord>, StoreError> {
        let t = self.t();
        let mut found: Vec<MemberRecord> = t
            .members
            .iter()
            .filter(|(o, _, _, _)| o == org)
            .map(|(_, a, role, added_at)| MemberRecord {
                account_id: a.clone(),
                email: t.accounts[a.as_str()].email.clone(),
                role: *role,
                two_factor_enabled: self.holders.has(a),
                added_at: *added_at,
            })
            .collect();
        found.sort_by(|a, b| {
            (a.role != OrgRole::Owner, a.email.as_str()).cmp(&(b.role != OrgRole::Owner, b.email.as_str()))
        });
        Ok(found)
    }

    async fn role_in(&self, org: &str, account: &AccountId) -> Result<Option<OrgRole>, StoreError> {
        Ok(self.t().members.iter().find(|(o, a, _, _)| o == org && a == account).map(|(_, _, r, _)| *r))
    }

    async fn set_role(&self, org: &str, account: &AccountId, role: OrgRole) -> Result<MembershipChange, StoreError> {
        let mut t = self.t();
        let owners = Self::owners(&t, org);
        let Some(m) = t.members.iter_mut().find(|(o, a, _, _)| o == org && a == account) else {
            return Ok(MembershipChange::NotMember);
        };
        if m.2 == OrgRole::Owner && role != OrgRole::Owner && owners == 1 {
            return Ok(MembershipChange::LastOwner);
        }
        m.2 = role;
        Ok(MembershipChange::Done)
    }

    async fn remove_member(&self, org: &str, account: &AccountId) -> Result<MembershipChange, StoreError> {
        let mut t = self.t();
        let owners = Self::owners(&t, org);
        let Some(at) = t.members.iter().position(|(o, a, _, _)| o == org && a == account) else {
            return Ok(MembershipChange::NotMember);
        };
        if t.members[at].2 == OrgRole::Owner && owners == 1 {
            return Ok(MembershipChange::LastOwner);
        }
        t.members.remove(at);
        Ok(MembershipChange::Done)
    }

    async fn set_require_two_factor(&self, org: &str, require: bool) -> Result<(), StoreError> {
        if let Some(o) = self.t().orgs.iter_mut().find(|o| o.id == org) {
            o.require_two_factor = require;
        }
        Ok(())
    }

    async fn set_refuse_synced_passkeys(&self, org: &str, refuse: bool) -> Result<(), StoreError> {
        if let Some(o) = self.t().orgs.iter_mut().find(|o| o.id == org) {
            o.refuse_synced_passkeys = refuse;
        }
        Ok(())
    }

    async fn orgs_refusing_synced_passkeys(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError> {
        Ok(self.orgs_of(account).await?.into_iter().map(|(o, _)| o).filter(|o| o.refuse_synced_passkeys).collect())
    }

    async fn org_requires_two_factor(&self, account: &AccountId) -> Result<bool, StoreError> {
        Ok(!self.orgs_requiring_two_factor(account).await?.is_empty())
    }

    async fn orgs_requiring_two_factor(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError> {
        Ok(self.orgs_of(account).await?.into_iter().map(|(o, _)| o).filter(|o| o.require_two_factor).collect())
    }

    async fn upsert_invitation(&self, invitation: &InvitationRecord, now: Timestamp) -> Result<(), StoreError> {
        let mut t = self.t();
        t.invitations
            .retain(|i| !(i.org_id == invitation.org_id && (i.email == invitation.email || i.expires_at <= now)));
        t.invitations.push(invitation.clone());
        Ok(())
    }

    async fn invitations_for(&self, email: &Email, now: Timestamp) -> Result<Vec<InvitationView>, StoreError> {
        let t = self.t();
        Ok(t.invitations
            .iter()
            .filter(|i| i.email == *email && now < i.expires_at)
            .map(|i| Self::view(&t, i))
            .collect())
    }

    async fn org_invitations(&self, org: &str, now: Timestamp) -> Result<Vec<InvitationView>, StoreError> {
        let t = self.t();
        Ok(t.invitations.iter().filter(|i| i.org_id == org && now < i.expires_at).map(|i| Self::view(&t, i)).collect())
    }

    async fn accept_invitation(&self, id: &str, account: &AccountId, now: Timestamp) -> Result<Acceptance, StoreError> {
        let mut t = self.t();
        let Some(at) = Self::addressed(&t, id, account, now) else { return Ok(Acceptance::NotFound) };
        let found = t.invitations.remove(at);
        if t.members.iter().any(|(o, a, _, _)| *o == found.org_id && a == account) {
            return Ok(Acceptance::AlreadyMember(found));
        }
        t.members.push((found.org_id.clone(), account.clone(), found.role, now));
        Ok(Acceptance::Joined(found))
    }

    async fn decline_invitation(
        &self,
        id: &str,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let mut t = self.t();
        Ok(Self::addressed(&t, id, account, now).map(|at| t.invitations.remove(at)))
    }

    async fn revoke_invitation(&self, org: &str, id: &str) -> Result<Option<InvitationRecord>, StoreError> {
        let mut t = self.t();
        let at = t.invitations.iter().position(|i| i.org_id == org && i.id == id);
        Ok(at.map(|at| t.invitations.remove(at)))
    }

    async fn purge_invitations(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut t = self.t();
        let n = t.invitations.len();
        t.invitations.retain(|i| i.expires_at > before);
        Ok(u64::try_from(n - t.invitations.len()).unwrap_or(0))
    }
}

/// The members' accounts, for the notices that find their addresses.
#[async_trait]
impl crate::accounts::store::AccountStore for MemOrgs {
    async fn insert_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        self.add_account(account.clone());
        Ok(())
    }
    async fn account_by_email(&self, email: &Email) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.t().accounts.values().find(|a| a.email == *email).cloned())
    }
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.t().accounts.get(id.as_str()).cloned())
    }
    async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(self.t().accounts.values().take(usize::try_from(limit).unwrap_or(0)).cloned().collect())
    }
    async fn set_disabled(&self, id: &AccountId, at: Option<Timestamp>) -> Result<bool, StoreError> {
        Ok(self.t().accounts.get_mut(id.as_str()).map(|a| a.disabled_at = at).is_some())
    }
    async fn record_sign_in(&self, _: &AccountId, _: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    async fn set_password_hash(&self, _: &AccountId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn set_email_verified(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError> {
        if let Some(a) = self.t().accounts.get_mut(id.as_str()) {
            a.email_verified_at = Some(at);
        }
        Ok(())
    }
}
