//! Accounts table.

use async_trait::async_trait;
use twostep_domain::accounts::email::Email;
use twostep_domain::accounts::store::{AccountRecord, AccountStore};
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::time::Timestamp;

use crate::sql::{Cols, Stmt};
use crate::{SqlStore, store_err};

/// The columns `account` decodes, as a literal so that `concat!` can build
/// the hot statements below at compile time.
macro_rules! columns {
    () => {
        "id, email, password_hash, created_at, disabled_at, last_sign_in_at, email_verified_at, admin_since"
    };
}

pub(crate) const COLUMNS: &str = columns!();

/// The sign-in's lookup (by e-mail) and many a request's (by id): prepared
/// once per connection and read without a hop on SQLite.
const BY_EMAIL: &str = concat!("SELECT ", columns!(), " FROM accounts WHERE email = $1");
const BY_ID: &str = concat!("SELECT ", columns!(), " FROM accounts WHERE id = $1");

pub(crate) fn ts(row: &(impl Cols + ?Sized), col: &str) -> Result<Timestamp, StoreError> {
    row.int(col).map(Timestamp::from_secs)
}

pub(crate) fn opt_ts(row: &(impl Cols + ?Sized), col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row.opt_int(col)?.map(Timestamp::from_secs))
}

pub(crate) fn text(row: &(impl Cols + ?Sized), col: &str) -> Result<String, StoreError> {
    row.text(col)
}

pub(crate) fn opt_secs(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::secs)
}

pub(crate) fn account(row: &(impl Cols + ?Sized)) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: AccountId::from_stored(text(row, "id")?),
        email: Email::from_stored(text(row, "email")?),
        password_hash: text(row, "password_hash")?,
        created_at: ts(row, "created_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        last_sign_in_at: opt_ts(row, "last_sign_in_at")?,
        email_verified_at: opt_ts(row, "email_verified_at")?,
        admin_since: opt_ts(row, "admin_since")?,
    })
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_account(&self, a: &AccountRecord) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "INSERT INTO accounts (id, email, password_hash, created_at, disabled_at, last_sign_in_at, email_verified_at,
                                   admin_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.id.as_str())
        .bind(a.email.as_str())
        .bind(&a.password_hash)
        .bind(a.created_at.secs())
        .bind(opt_secs(a.disabled_at))
        .bind(opt_secs(a.last_sign_in_at))
        .bind(opt_secs(a.email_verified_at))
        .bind(opt_secs(a.admin_since))
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<AccountRecord>, StoreError> {
        self.read_opt(&Stmt::new(BY_EMAIL).arg(email.as_str()), |r| account(r)).await
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        self.read_opt(&Stmt::new(BY_ID).arg(id.as_str()), |r| account(r)).await
    }

    async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM accounts ORDER BY email LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(account)
            .collect()
    }

    async fn set_disabled(&self, id: &AccountId, at: Option<Timestamp>) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("UPDATE accounts SET disabled_at = $1 WHERE id = $2")
            .bind(opt_secs(at))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn record_sign_in(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE accounts SET last_sign_in_at = $1 WHERE id = $2")
            .bind(at.secs())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn set_password_hash(&self, id: &AccountId, hash: &str) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn set_email_verified(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE accounts SET email_verified_at = $1 WHERE id = $2")
            .bind(at.secs())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
