//! Push approval: pairing codes, companion devices and sign-in challenges.
//!
//! Every state change of a challenge is one conditional UPDATE whose
//! affected-row count says who won, so an answer, a replay of it and an
//! expiry racing each other settle once, on both engines and across
//! instances.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::factors::push::store::{PushChallengeRecord, PushCounts, PushDeviceRecord, PushStatus, PushStore};
use twostep_domain::ids::{AccountId, AuthenticatorId};
use twostep_domain::time::Timestamp;
use twostep_domain::token::TokenHash;

use crate::accounts::{opt_ts, text, ts};
use crate::factors::{authenticator, blob, insert_authenticator};
use crate::{SqlStore, store_err};

const DEVICE_COLUMNS: &str = "a.id, a.account_id, a.kind, a.name, a.secret_sealed, a.last_step, a.created_at,
    a.last_used_at, d.public_key, d.webpush_sealed, d.last_seen_at";

const CHALLENGE_COLUMNS: &str = "id, account_id, login_token, number, status, created_at, expires_at, answered_at,
    device_id, not_me, used_at, ip, user_agent, place";

fn device(row: &AnyRow) -> Result<PushDeviceRecord, StoreError> {
    Ok(PushDeviceRecord {
        authenticator: authenticator(row)?,
        public_key: blob(row, "public_key")?,
        webpush_sealed: row.try_get::<Option<Vec<u8>>, _>("webpush_sealed").map_err(store_err)?,
        last_seen_at: opt_ts(row, "last_seen_at")?,
    })
}

fn challenge(row: &AnyRow) -> Result<PushChallengeRecord, StoreError> {
    Ok(PushChallengeRecord {
        id: text(row, "id")?,
        account_id: AccountId::from_stored(text(row, "account_id")?),
        login_token: text(row, "login_token")?,
        number: row.try_get::<i64, _>("number").map_err(store_err)?,
        status: PushStatus::from_stored(&text(row, "status")?),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        answered_at: opt_ts(row, "answered_at")?,
        device_id: row.try_get::<Option<String>, _>("device_id").map_err(store_err)?.map(AuthenticatorId::from_stored),
        not_me: row.try_get::<i64, _>("not_me").map_err(store_err)? != 0,
        used_at: opt_ts(row, "used_at")?,
        ip: text(row, "ip")?,
        user_agent: text(row, "user_agent")?,
        place: row.try_get::<Option<String>, _>("place").map_err(store_err)?,
    })
}

#[async_trait]
impl PushStore for SqlStore {
    async fn replace_pairing(
        &self,
        id: &TokenHash,
        account: &AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM push_pairings WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        sqlx::query("INSERT INTO push_pairings (id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(now.secs())
            .bind(expires_at.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn pairing_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError> {
        let row = sqlx::query("SELECT account_id FROM push_pairings WHERE id = $1 AND expires_at > $2")
            .bind(id.as_str())
            .bind(now.secs())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| text(&r, "account_id").map(AccountId::from_stored)).transpose()
    }

    async fn add_push_device(
        &self,
        pairing: &TokenHash,
        now: Timestamp,
        d: &PushDeviceRecord,
    ) -> Result<bool, StoreError> {
        let a = &d.authenticator;
        let mut tx = self.begin().await?;
        let taken = sqlx::query("DELETE FROM push_pairings WHERE id = $1 AND account_id = $2 AND expires_at > $3")
            .bind(pairing.as_str())
            .bind(a.account_id.as_str())
            .bind(now.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?
            .rows_affected();
        if taken != 1 {
            return Ok(false);
        }
        insert_authenticator(&mut tx, a).await?;
        sqlx::query(
            "INSERT INTO push_devices (authenticator_id, account_id, public_key, webpush_sealed, last_seen_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.id.as_str())
        .bind(a.account_id.as_str())
        .bind(&d.public_key)
        .bind(d.webpush_sealed.as_deref())
        .bind(d.last_seen_at.map(Timestamp::secs))
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(true)
    }

    async fn push_device(&self, id: &AuthenticatorId) -> Result<Option<PushDeviceRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM push_devices d JOIN authenticators a ON a.id = d.authenticator_id
             WHERE d.authenticator_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .map(|r| device(&r))
        .transpose()
    }

    async fn push_devices(&self, account: &AccountId) -> Result<Vec<PushDeviceRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM push_devices d JOIN authenticators a ON a.id = d.authenticator_id
             WHERE d.account_id = $1 ORDER BY a.created_at, a.id"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(device)
        .collect()
    }

    async fn set_push_subscription(&self, id: &AuthenticatorId, sealed: Option<&[u8]>) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE push_devices SET webpush_sealed = $1 WHERE authenticator_id = $2")
            .bind(sealed)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn touch_push_device(&self, id: &AuthenticatorId, at: Timestamp) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE push_devices SET last_seen_at = $1 WHERE authenticator_id = $2")
            .bind(at.secs())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn rename_authenticator(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("UPDATE authenticators SET name = $1 WHERE id = $2 AND account_id = $3")
            .bind(name)
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_push_challenge_capped(
        &self,
        c: &PushChallengeRecord,
        since: Timestamp,
        last_success: Timestamp,
        decide: &(dyn for<'c> Fn(&'c PushCounts) -> Option<i64> + Send + Sync),
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin().await?;
        // The account's push lock makes the fatigue counts and the insert
        // one step: a burst of raises on any instance leaves no more
        // pending pushes than raises one after another would.
        crate::locks::take(&mut tx, &format!("push:{}", c.account_id.as_str())).await?;
        let counts = push_counts(&mut tx, &c.account_id, since, last_success).await?;
        if let Some(wait) = decide(&counts) {
            return Ok(Some(wait));
        }
        sqlx::query(&format!(
            "INSERT INTO push_challenges ({CHALLENGE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&c.id)
        .bind(c.account_id.as_str())
        .bind(&c.login_token)
        .bind(c.number)
        .bind(c.status.as_str())
        .bind(c.created_at.secs())
        .bind(c.expires_at.secs())
        .bind(c.answered_at.map(Timestamp::secs))
        .bind(c.device_id.as_ref().map(AuthenticatorId::as_str))
        .bind(i64::from(c.not_me))
        .bind(c.used_at.map(Timestamp::secs))
        .bind(&c.ip)
        .bind(&c.user_agent)
        .bind(c.place.as_deref())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(None)
    }

    async fn push_challenge(&self, id: &str) -> Result<Option<PushChallengeRecord>, StoreError> {
        sqlx::query(&format!("SELECT {CHALLENGE_COLUMNS} FROM push_challenges WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| challenge(&r))
            .transpose()
    }

    async fn pending_push_challenges(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<Vec<PushChallengeRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM push_challenges
             WHERE account_id = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at DESC, id"
        ))
        .bind(account.as_str())
        .bind(now.secs())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(challenge)
        .collect()
    }

    async fn answer_push_challenge(
        &self,
        id: &str,
        status: PushStatus,
        device: &AuthenticatorId,
        not_me: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query(
            "UPDATE push_challenges SET status = $1, device_id = $2, not_me = $3, answered_at = $4
             WHERE id = $5 AND status = 'pending' AND expires_at > $4",
        )
        .bind(status.as_str())
        .bind(device.as_str())
        .bind(i64::from(not_me))
        .bind(now.secs())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_push_challenge(&self, id: &str, login_token: &str, now: Timestamp) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query(
            "UPDATE push_challenges SET used_at = $1
             WHERE id = $2 AND login_token = $3 AND status = 'approved' AND used_at IS NULL",
        )
        .bind(now.secs())
        .bind(id)
        .bind(login_token)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_push(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let challenges = sqlx::query("DELETE FROM push_challenges WHERE created_at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?
            .rows_affected();
        let pairings = sqlx::query("DELETE FROM push_pairings WHERE expires_at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?
            .rows_affected();
        Ok(challenges + pairings)
    }
}

/// The fatigue counts of `PushCounts`, inside the caller's transaction.
async fn push_counts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &AccountId,
    since: Timestamp,
    last_success: Timestamp,
) -> Result<PushCounts, StoreError> {
    let row = sqlx::query(
        "SELECT
            (SELECT COUNT(*) FROM push_challenges
              WHERE account_id = $1 AND created_at > $2 AND status <> 'approved') AS recent,
            (SELECT MIN(created_at) FROM push_challenges
              WHERE account_id = $1 AND created_at > $2 AND status <> 'approved') AS oldest,
            (SELECT COUNT(*) FROM push_challenges
              WHERE account_id = $1 AND created_at >= $3 AND created_at >= COALESCE(
                  (SELECT MAX(created_at) FROM push_challenges WHERE account_id = $1 AND status = 'approved'),
                  0)
                AND status <> 'approved') AS since_success",
    )
    .bind(account.as_str())
    .bind(since.secs())
    .bind(last_success.secs())
    .fetch_one(&mut **tx)
    .await
    .map_err(store_err)?;
    Ok(PushCounts {
        unapproved_recent: row.try_get::<i64, _>("recent").map_err(store_err)?,
        oldest_recent: opt_ts(&row, "oldest")?,
        since_last_success: row.try_get::<i64, _>("since_success").map_err(store_err)?,
    })
}
