//! Password-reset tokens and remembered browsers.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::accounts::store::{CredentialStore, RememberedBrowser};
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::time::Timestamp;
use twostep_domain::token::TokenHash;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::{SqlStore, store_err};

const BROWSER_COLUMNS: &str = "id, token_hash, account_id, created_at, expires_at, last_used_at, ip, user_agent";

fn browser(row: &AnyRow) -> Result<RememberedBrowser, StoreError> {
    Ok(RememberedBrowser {
        id: text(row, "id")?,
        token_hash: TokenHash::from_stored(text(row, "token_hash")?),
        account_id: AccountId::from_stored(text(row, "account_id")?),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        ip: text(row, "ip")?,
        user_agent: text(row, "user_agent")?,
    })
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn insert_reset(
        &self,
        id: &TokenHash,
        account: &AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("INSERT INTO password_resets (id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(now.secs())
            .bind(expires_at.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn consume_reset(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError> {
        let _gate = self.pool_gate().await;
        let row = sqlx::query("DELETE FROM password_resets WHERE id = $1 AND expires_at > $2 RETURNING account_id")
            .bind(id.as_str())
            .bind(now.secs())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| r.try_get::<String, _>(0).map(AccountId::from_stored).map_err(store_err)).transpose()
    }

    async fn reset_account(&self, id: &TokenHash, now: Timestamp) -> Result<Option<AccountId>, StoreError> {
        let row = sqlx::query("SELECT account_id FROM password_resets WHERE id = $1 AND expires_at > $2")
            .bind(id.as_str())
            .bind(now.secs())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| r.try_get::<String, _>(0).map(AccountId::from_stored).map_err(store_err)).transpose()
    }

    async fn delete_resets_of(&self, account: &AccountId) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("DELETE FROM password_resets WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn insert_remembered(&self, b: &RememberedBrowser) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(&format!(
            "INSERT INTO remembered_browsers ({BROWSER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&b.id)
        .bind(b.token_hash.as_str())
        .bind(b.account_id.as_str())
        .bind(b.created_at.secs())
        .bind(b.expires_at.secs())
        .bind(opt_secs(b.last_used_at))
        .bind(&b.ip)
        .bind(&b.user_agent)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn remembered(&self, token: &TokenHash) -> Result<Option<RememberedBrowser>, StoreError> {
        sqlx::query(&format!("SELECT {BROWSER_COLUMNS} FROM remembered_browsers WHERE token_hash = $1"))
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(browser)
            .transpose()
    }

    async fn touch_remembered(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE remembered_browsers SET last_used_at = $1 WHERE id = $2")
            .bind(at.secs())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn remembered_of(&self, account: &AccountId) -> Result<Vec<RememberedBrowser>, StoreError> {
        sqlx::query(&format!(
            "SELECT {BROWSER_COLUMNS} FROM remembered_browsers WHERE account_id = $1 ORDER BY created_at DESC"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(browser)
        .collect()
    }

    async fn delete_remembered(&self, account: &AccountId, id: &str) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("DELETE FROM remembered_browsers WHERE account_id = $1 AND id = $2")
            .bind(account.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_remembered_of(&self, account: &AccountId) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("DELETE FROM remembered_browsers WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
