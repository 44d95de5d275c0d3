//! Organisations and their members.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use twostep_domain::accounts::email::Email;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::store::{
    Acceptance, InvitationRecord, InvitationView, MemberRecord, MembershipChange, OrgRecord, OrgRole, OrgStore,
};
use twostep_domain::time::Timestamp;

use crate::accounts::{text, ts};
use crate::{SqlStore, store_err};

fn org(row: &AnyRow) -> Result<OrgRecord, StoreError> {
    Ok(OrgRecord {
        id: text(row, "id")?,
        name: text(row, "name")?,
        require_two_factor: row.try_get::<i64, _>("require_two_factor").map_err(store_err)? != 0,
        refuse_synced_passkeys: row.try_get::<i64, _>("refuse_synced_passkeys").map_err(store_err)? != 0,
        created_at: ts(row, "created_at")?,
    })
}

fn role(row: &AnyRow) -> Result<OrgRole, StoreError> {
    let r = text(row, "role")?;
    OrgRole::parse(&r).ok_or_else(|| StoreError::Backend(format!("unknown role {r:?}")))
}

/// Serialises membership changes of one organisation: an update of its row
/// is a row lock on PostgreSQL (SQLite has one writer anyway), so two owners
/// demoting each other cannot both see "another owner remains".
async fn lock_org(tx: &mut Transaction<'_, Any>, org: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE organizations SET name = name WHERE id = $1")
        .bind(org)
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
    Ok(())
}

async fn owners(tx: &mut Transaction<'_, Any>, org: &str) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM org_members WHERE org_id = $1 AND role = 'owner'")
        .bind(org)
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(store_err)
}

async fn current_role(
    tx: &mut Transaction<'_, Any>,
    org: &str,
    account: &AccountId,
) -> Result<Option<OrgRole>, StoreError> {
    sqlx::query("SELECT role FROM org_members WHERE org_id = $1 AND account_id = $2")
        .bind(org)
        .bind(account.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_err)?
        .map(|r| role(&r))
        .transpose()
}

const INVITATION_COLUMNS: &str = "i.id, i.org_id, i.email, i.role, i.invited_by, i.created_at, i.expires_at";

fn invitation(row: &AnyRow) -> Result<InvitationRecord, StoreError> {
    Ok(InvitationRecord {
        id: text(row, "id")?,
        org_id: text(row, "org_id")?,
        email: Email::from_stored(text(row, "email")?),
        role: role(row)?,
        invited_by: AccountId::from_stored(text(row, "invited_by")?),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn invitation_view(row: &AnyRow) -> Result<InvitationView, StoreError> {
    Ok(InvitationView {
        invitation: invitation(row)?,
        org_name: text(row, "org_name")?,
        invited_by_email: Email::from_stored(text(row, "inviter_email")?),
    })
}

/// Deletes the pending invitation `id` to the account's current address and
/// returns it, only while that address is verified. The address is read in
/// the same statement, so an answer never rests on an address the caller
/// read earlier.
async fn take_invitation(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    account: &AccountId,
    now: Timestamp,
) -> Result<Option<InvitationRecord>, StoreError> {
    sqlx::query(
        "DELETE FROM org_invitations WHERE id = $1 AND expires_at > $3
            AND email = (SELECT email FROM accounts WHERE id = $2 AND email_verified_at IS NOT NULL)
         RETURNING id, org_id, email, role, invited_by, created_at, expires_at",
    )
    .bind(id)
    .bind(account.as_str())
    .bind(now.secs())
    .fetch_optional(&mut **tx)
    .await
    .map_err(store_err)?
    .map(|r| invitation(&r))
    .transpose()
}

impl SqlStore {
    /// The account's organisations whose switch `flag` is on. `flag` is one
    /// of our column names, never input.
    async fn member_orgs_with(&self, account: &AccountId, flag: &'static str) -> Result<Vec<OrgRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT o.id, o.name, o.require_two_factor, o.refuse_synced_passkeys, o.created_at
             FROM org_members m JOIN organizations o ON o.id = m.org_id
             WHERE m.account_id = $1 AND o.{flag} <> 0 ORDER BY o.name, o.id"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(org)
        .collect()
    }
}

#[async_trait]
impl OrgStore for SqlStore {
    async fn insert_org(&self, o: &OrgRecord, owner: &AccountId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO organizations (id, name, require_two_factor, refuse_synced_passkeys, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&o.id)
        .bind(&o.name)
        .bind(i64::from(o.require_two_factor))
        .bind(i64::from(o.refuse_synced_passkeys))
        .bind(o.created_at.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        sqlx::query("INSERT INTO org_members (org_id, account_id, role, added_at) VALUES ($1, $2, 'owner', $3)")
            .bind(&o.id)
            .bind(owner.as_str())
            .bind(o.created_at.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn org(&self, id: &str) -> Result<Option<OrgRecord>, StoreError> {
        sqlx::query(
            "SELECT id, name, require_two_factor, refuse_synced_passkeys, created_at FROM organizations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .map(|r| org(&r))
        .transpose()
    }

    async fn orgs_of(&self, account: &AccountId) -> Result<Vec<(OrgRecord, OrgRole)>, StoreError> {
        sqlx::query(
            "SELECT o.id, o.name, o.require_two_factor, o.refuse_synced_passkeys, o.created_at, m.role
             FROM org_members m JOIN organizations o ON o.id = m.org_id
             WHERE m.account_id = $1 ORDER BY o.name, o.id",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| Ok((org(r)?, role(r)?)))
        .collect()
    }

    async fn members(&self, org: &str) -> Result<Vec<MemberRecord>, StoreError> {
        sqlx::query(
            "SELECT m.account_id, a.email, m.role, m.added_at,
                    CASE WHEN EXISTS (SELECT 1 FROM authenticators f WHERE f.account_id = m.account_id)
                         THEN 1 ELSE 0 END AS two_factor
             FROM org_members m JOIN accounts a ON a.id = m.account_id
             WHERE m.org_id = $1
             ORDER BY CASE m.role WHEN 'owner' THEN 0 ELSE 1 END, a.email",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| {
            Ok(MemberRecord {
                account_id: AccountId::from_stored(text(r, "account_id")?),
                email: Email::from_stored(text(r, "email")?),
                role: role(r)?,
                two_factor_enabled: r.try_get::<i64, _>("two_factor").map_err(store_err)? != 0,
                added_at: ts(r, "added_at")?,
            })
        })
        .collect()
    }

    async fn role_in(&self, org: &str, account: &AccountId) -> Result<Option<OrgRole>, StoreError> {
        sqlx::query("SELECT role FROM org_members WHERE org_id = $1 AND account_id = $2")
            .bind(org)
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| role(&r))
            .transpose()
    }

    async fn set_role(&self, org: &str, account: &AccountId, new: OrgRole) -> Result<MembershipChange, StoreError> {
        let mut tx = self.begin().await?;
        lock_org(&mut tx, org).await?;
        let Some(old) = current_role(&mut tx, org, account).await? else { return Ok(MembershipChange::NotMember) };
        if old == OrgRole::Owner && new != OrgRole::Owner && owners(&mut tx, org).await? <= 1 {
            return Ok(MembershipChange::LastOwner);
        }
        sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND account_id = $3")
            .bind(new.as_str())
            .bind(org)
            .bind(account.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(MembershipChange::Done)
    }

    async fn remove_member(&self, org: &str, account: &AccountId) -> Result<MembershipChange, StoreError> {
        let mut tx = self.begin().await?;
        lock_org(&mut tx, org).await?;
        let Some(old) = current_role(&mut tx, org, account).await? else { return Ok(MembershipChange::NotMember) };
        if old == OrgRole::Owner && owners(&mut tx, org).await? <= 1 {
            return Ok(MembershipChange::LastOwner);
        }
        sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND account_id = $2")
            .bind(org)
            .bind(account.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(MembershipChange::Done)
    }

    async fn set_require_two_factor(&self, org: &str, require: bool) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE organizations SET require_two_factor = $1 WHERE id = $2")
            .bind(i64::from(require))
            .bind(org)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn set_refuse_synced_passkeys(&self, org: &str, refuse: bool) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE organizations SET refuse_synced_passkeys = $1 WHERE id = $2")
            .bind(i64::from(refuse))
            .bind(org)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn orgs_refusing_synced_passkeys(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError> {
        self.member_orgs_with(account, "refuse_synced_passkeys").await
    }

    async fn org_requires_two_factor(&self, account: &AccountId) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM org_members m JOIN organizations o ON o.id = m.org_id
             WHERE m.account_id = $1 AND o.require_two_factor <> 0",
        )
        .bind(account.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(row.try_get::<i64, _>(0).map_err(store_err)? > 0)
    }

    async fn orgs_requiring_two_factor(&self, account: &AccountId) -> Result<Vec<OrgRecord>, StoreError> {
        self.member_orgs_with(account, "require_two_factor").await
    }

    async fn upsert_invitation(&self, i: &InvitationRecord, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM org_invitations WHERE org_id = $1 AND expires_at <= $2")
            .bind(&i.org_id)
            .bind(now.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        sqlx::query(
            "INSERT INTO org_invitations (id, org_id, email, role, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, email) DO UPDATE SET
                id = excluded.id, role = excluded.role, invited_by = excluded.invited_by,
                created_at = excluded.created_at, expires_at = excluded.expires_at",
        )
        .bind(&i.id)
        .bind(&i.org_id)
        .bind(i.email.as_str())
        .bind(i.role.as_str())
        .bind(i.invited_by.as_str())
        .bind(i.created_at.secs())
        .bind(i.expires_at.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn invitations_for(&self, email: &Email, now: Timestamp) -> Result<Vec<InvitationView>, StoreError> {
        sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS}, o.name AS org_name, a.email AS inviter_email
             FROM org_invitations i JOIN organizations o ON o.id = i.org_id JOIN accounts a ON a.id = i.invited_by
             WHERE i.email = $1 AND i.expires_at > $2 ORDER BY i.created_at, i.id"
        ))
        .bind(email.as_str())
        .bind(now.secs())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(invitation_view)
        .collect()
    }

    async fn org_invitations(&self, org: &str, now: Timestamp) -> Result<Vec<InvitationView>, StoreError> {
        sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS}, o.name AS org_name, a.email AS inviter_email
             FROM org_invitations i JOIN organizations o ON o.id = i.org_id JOIN accounts a ON a.id = i.invited_by
             WHERE i.org_id = $1 AND i.expires_at > $2 ORDER BY i.created_at, i.id"
        ))
        .bind(org)
        .bind(now.secs())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(invitation_view)
        .collect()
    }

    async fn accept_invitation(&self, id: &str, account: &AccountId, now: Timestamp) -> Result<Acceptance, StoreError> {
        let mut tx = self.begin().await?;
        let Some(found) = take_invitation(&mut tx, id, account, now).await? else { return Ok(Acceptance::NotFound) };
        let added = sqlx::query(
            "INSERT INTO org_members (org_id, account_id, role, added_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, account_id) DO NOTHING",
        )
        .bind(&found.org_id)
        .bind(account.as_str())
        .bind(found.role.as_str())
        .bind(now.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?
        .rows_affected();
        tx.commit().await.map_err(store_err)?;
        Ok(if added == 1 { Acceptance::Joined(found) } else { Acceptance::AlreadyMember(found) })
    }

    async fn decline_invitation(
        &self,
        id: &str,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let mut tx = self.begin().await?;
        let found = take_invitation(&mut tx, id, account, now).await?;
        tx.commit().await.map_err(store_err)?;
        Ok(found)
    }

    async fn revoke_invitation(&self, org: &str, id: &str) -> Result<Option<InvitationRecord>, StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "DELETE FROM org_invitations WHERE id = $1 AND org_id = $2
             RETURNING id, org_id, email, role, invited_by, created_at, expires_at",
        )
        .bind(id)
        .bind(org)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .map(|r| invitation(&r))
        .transpose()
    }

    async fn purge_invitations(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("DELETE FROM org_invitations WHERE expires_at <= $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected())
    }
}
