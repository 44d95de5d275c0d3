//! One-time codes sent by SMS, voice or e-mail, and the send log behind
//! the resend cooldown and caps.

use std::fmt::Write as _;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::ports::{Channel, CodePurpose, CodeStore, OobCodeRecord, SendCount, SendFilter};
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_ts, text, ts};
use crate::{SqlStore, store_err};

const COLUMNS: &str =
    "id, account_id, purpose, channel, destination, binding, code_hash, created_at, expires_at, failures";

fn code(row: &AnyRow, purpose: CodePurpose) -> Result<OobCodeRecord, StoreError> {
    let channel = text(row, "channel")?;
    Ok(OobCodeRecord {
        id: text(row, "id")?,
        account_id: AccountId::from_stored(text(row, "account_id")?),
        purpose,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::Backend(format!("unknown code channel {channel:?}")))?,
        destination: text(row, "destination")?,
        binding: text(row, "binding")?,
        code_hash: row.try_get::<Vec<u8>, _>("code_hash").map_err(store_err)?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        failures: row.try_get::<i64, _>("failures").map_err(store_err)?,
    })
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn insert_oob_code(&self, c: &OobCodeRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        // The unique (account, purpose) index makes this an atomic "latest
        // code wins": the earlier code is overwritten, never left valid.
        sqlx::query(&format!(
            "INSERT INTO oob_codes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (account_id, purpose) DO UPDATE SET
                id = excluded.id, channel = excluded.channel, destination = excluded.destination,
                binding = excluded.binding, code_hash = excluded.code_hash, created_at = excluded.created_at,
                expires_at = excluded.expires_at, failures = excluded.failures"
        ))
        .bind(&c.id)
        .bind(c.account_id.as_str())
        .bind(c.purpose.as_str())
        .bind(c.channel.as_str())
        .bind(&c.destination)
        .bind(&c.binding)
        .bind(&c.code_hash)
        .bind(c.created_at.secs())
        .bind(c.expires_at.secs())
        .bind(c.failures)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        sqlx::query("INSERT INTO oob_sends (id, account_id, destination, binding, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.id)
            .bind(c.account_id.as_str())
            .bind(&c.destination)
            .bind(&c.binding)
            .bind(c.created_at.secs())
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn oob_code(&self, account: &AccountId, purpose: CodePurpose) -> Result<Option<OobCodeRecord>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM oob_codes WHERE account_id = $1 AND purpose = $2"))
            .bind(account.as_str())
            .bind(purpose.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| code(&r, purpose))
            .transpose()
    }

    async fn oob_code_failed(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("UPDATE oob_codes SET failures = failures + 1 WHERE id = $1 RETURNING failures")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        // A code deleted meanwhile counts as spent.
        row.map_or(Ok(i64::MAX), |r| r.try_get::<i64, _>(0).map_err(store_err))
    }

    async fn take_oob_code(&self, id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM oob_codes WHERE id = $1").bind(id).execute(&self.pool).await.map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_sends(&self, f: &SendFilter<'_>, since: Timestamp) -> Result<SendCount, StoreError> {
        let mut sql =
            String::from("SELECT COUNT(*) AS n, MIN(at) AS earliest, MAX(at) AS latest FROM oob_sends WHERE at > $1");
        let mut binds: Vec<&str> = Vec::new();
        for (col, value) in
            [("account_id", f.account.map(AccountId::as_str)), ("destination", f.destination), ("binding", f.binding)]
        {
            if let Some(v) = value {
                binds.push(v);
                let _ = write!(sql, " AND {col} = ${}", binds.len() + 1);
            }
        }
        let mut q = sqlx::query(&sql).bind(since.secs());
        for b in binds {
            q = q.bind(b);
        }
        let row = q.fetch_one(&self.pool).await.map_err(store_err)?;
        Ok(SendCount {
            count: row.try_get::<i64, _>("n").map_err(store_err)?,
            earliest: opt_ts(&row, "earliest")?,
            latest: opt_ts(&row, "latest")?,
        })
    }

    async fn purge_sends(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM oob_sends WHERE at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected())
    }
}
