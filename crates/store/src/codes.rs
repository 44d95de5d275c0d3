//! One-time codes sent by SMS, voice or e-mail, and the send log behind
//! the resend cooldown and caps.

use std::fmt::Write as _;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::factors::sent_code::store::{
    CodePurpose, CodeStore, OobCodeRecord, SendCheck, SendCount, SendFilter, SendRecord,
};
use twostep_domain::ids::AccountId;
use twostep_domain::notify::store::Channel;
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_ts, text, ts};
use crate::{SqlStore, store_err};

const COLUMNS: &str = "id, account_id, purpose, channel, destination, binding, code_hash, created_at, expires_at, \
                       failures, destination_sealed";

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
        destination_sealed: row.try_get::<Option<Vec<u8>>, _>("destination_sealed").map_err(store_err)?,
    })
}

/// The counting query of one send check, and its text parameters after `at > $1`.
fn send_count_query<'a>(f: &SendFilter<'a>) -> (String, Vec<&'a str>) {
    let mut sql =
        String::from("SELECT COUNT(*) AS n, MIN(at) AS earliest, MAX(at) AS latest FROM oob_sends WHERE at > $1");
    let mut binds: Vec<&str> = Vec::new();
    for (col, value) in [
        ("account_id", f.account.map(AccountId::as_str)),
        ("destination", f.destination),
        ("binding", f.binding),
        ("calling_code", f.calling_code),
    ] {
        if let Some(v) = value {
            binds.push(v);
            let _ = write!(sql, " AND {col} = ${}", binds.len() + 1);
        }
    }
    if f.phone_only {
        sql.push_str(" AND channel IN ('sms', 'voice')");
    }
    (sql, binds)
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn insert_oob_code_capped(
        &self,
        c: &OobCodeRecord,
        send: &SendRecord<'_>,
        checks: &[SendCheck<'_>],
        decide: &(dyn for<'c> Fn(&'c [SendCount]) -> Option<i64> + Send + Sync),
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin().await?;
        // Every send takes the one `sends` lock first (a write: SQLite's
        // write lock, a row lock on PostgreSQL), so the counts below cannot
        // change before this send is logged: the caps, the global one
        // included, hold for a burst on any number of instances. Sends are
        // rare and capped; one at a time is cheap.
        crate::locks::take(&mut tx, "sends").await?;
        let mut counts = Vec::with_capacity(checks.len());
        for check in checks {
            let (sql, binds) = send_count_query(&check.filter);
            let mut q = sqlx::query(&sql).bind(check.since.secs());
            for b in binds {
                q = q.bind(b);
            }
            let row = q.fetch_one(&mut **tx).await.map_err(store_err)?;
            counts.push(SendCount {
                count: row.try_get::<i64, _>("n").map_err(store_err)?,
                earliest: opt_ts(&row, "earliest")?,
                latest: opt_ts(&row, "latest")?,
            });
        }
        if let Some(wait) = decide(&counts) {
            return Ok(Some(wait));
        }
        // The unique (account, purpose) index makes this an atomic "latest
        // code wins": the earlier code is overwritten, never left valid.
        sqlx::query(&format!(
            "INSERT INTO oob_codes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (account_id, purpose) DO UPDATE SET
                id = excluded.id, channel = excluded.channel, destination = excluded.destination,
                binding = excluded.binding, code_hash = excluded.code_hash, created_at = excluded.created_at,
                expires_at = excluded.expires_at, failures = excluded.failures,
                destination_sealed = excluded.destination_sealed"
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
        .bind(c.destination_sealed.clone())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        sqlx::query(
            "INSERT INTO oob_sends (id, account_id, destination, binding, at, channel, calling_code)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(c.account_id.as_str())
        .bind(&c.destination)
        .bind(&c.binding)
        .bind(c.created_at.secs())
        .bind(c.channel.as_str())
        .bind(send.calling_code)
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(None)
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

    async fn count_oob_attempt(&self, id: &str, max_tries: i64) -> Result<Option<i64>, StoreError> {
        let _gate = self.pool_gate().await;
        let row = sqlx::query(
            "UPDATE oob_codes SET failures = failures + 1 WHERE id = $1 AND failures < $2 RETURNING failures",
        )
        .bind(id)
        .bind(max_tries)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        row.map(|r| r.try_get::<i64, _>(0).map_err(store_err)).transpose()
    }

    async fn take_oob_code(&self, id: &str) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done =
            sqlx::query("DELETE FROM oob_codes WHERE id = $1").bind(id).execute(&self.pool).await.map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_sends(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("DELETE FROM oob_sends WHERE at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected())
    }
}
