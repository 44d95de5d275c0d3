//! Authenticators, TOTP enrolments and recovery codes.
//!
//! The single-use guarantees are single statements: the replay guard
//! (`write_proof`) and `use_recovery_code` are conditional UPDATEs whose
//! affected-row count says who won, which holds on both engines and across
//! instances.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use twostep_domain::abuse::throttle::Counter;
use twostep_domain::error::StoreError;
use twostep_domain::factors::store::{
    AuthenticatorRecord, ConfirmOutcome, EnrollmentRecord, FactorStore, FactorSummary, PhoneOutcome, ProofWrites,
    RecoveryCodeRecord,
};
use twostep_domain::ids::{AccountId, AuthenticatorId, EnrollmentId, RecoveryCodeId};
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::exec::Tx;
use crate::sql::{Cols, Stmt};
use crate::{SqlStore, store_err};

/// `factor_summary`'s read. Tagged rows: one per authenticator kind ('k'),
/// one counting the unused recovery codes ('r'), the preferred method ('p'),
/// one per existing counter ('c'); each part by an index, the kinds and the
/// unused codes from covering ones (migration 0018) that leave their large
/// tables unvisited. A `Stmt`,
/// so that on SQLite it runs on a direct reader with its statement
/// prepared once (it is the second of `/me`'s two reads).
fn summary_read<'a>(account: &'a AccountId, scopes: &'a [String]) -> Stmt<'a> {
    let mut sql = String::from(
        "SELECT 'k' AS tag, kind AS name, COUNT(*) AS a, 0 AS b, 0 AS c
           FROM authenticators WHERE account_id = $1 GROUP BY kind
         UNION ALL
         SELECT 'r', NULL, COUNT(*), 0, 0 FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL
         UNION ALL
         SELECT 'p', method, 0, 0, 0 FROM method_preferences WHERE account_id = $1",
    );
    if !scopes.is_empty() {
        sql.push_str(" UNION ALL SELECT 'c', scope, failures, last_failure_at, window_start FROM throttle_counters");
        sql.push_str(" WHERE scope IN (");
        sql.push_str(&crate::throttle::placeholders(2, scopes.len()));
        sql.push(')');
    }
    scopes.iter().fold(Stmt::new(sql).arg(account.as_str()), Stmt::arg)
}

pub(crate) fn blob(row: &(impl Cols + ?Sized), col: &str) -> Result<Vec<u8>, StoreError> {
    row.blob(col)
}

pub(crate) fn authenticator(row: &(impl Cols + ?Sized)) -> Result<AuthenticatorRecord, StoreError> {
    Ok(AuthenticatorRecord {
        id: AuthenticatorId::from_stored(text(row, "id")?),
        account_id: AccountId::from_stored(text(row, "account_id")?),
        kind: text(row, "kind")?,
        name: text(row, "name")?,
        secret_sealed: blob(row, "secret_sealed")?,
        last_step: row.int("last_step")?,
        created_at: ts(row, "created_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
    })
}

fn recovery(row: &AnyRow) -> Result<RecoveryCodeRecord, StoreError> {
    Ok(RecoveryCodeRecord {
        id: RecoveryCodeId::from_stored(text(row, "id")?),
        account_id: AccountId::from_stored(text(row, "account_id")?),
        lookup: blob(row, "lookup")?,
        code_sealed: blob(row, "code_sealed")?,
        position: row.try_get::<i64, _>("position").map_err(store_err)?,
        created_at: ts(row, "created_at")?,
        used_at: opt_ts(row, "used_at")?,
    })
}

async fn insert_codes(tx: &mut Transaction<'_, Any>, codes: &[RecoveryCodeRecord]) -> Result<(), StoreError> {
    for c in codes {
        sqlx::query(
            "INSERT INTO recovery_codes (id, account_id, lookup, code_sealed, position, created_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id.as_str())
        .bind(c.account_id.as_str())
        .bind(&c.lookup)
        .bind(&c.code_sealed)
        .bind(c.position)
        .bind(c.created_at.secs())
        .bind(opt_secs(c.used_at))
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
    }
    Ok(())
}

/// The account's recovery codes replaced by `codes`, inside `tx`: what
/// turning 2FA on with any first factor stores.
pub(crate) async fn replace_codes_in(
    tx: &mut Transaction<'_, Any>,
    account: &AccountId,
    codes: &[RecoveryCodeRecord],
) -> Result<(), StoreError> {
    delete_for(tx, "recovery_codes", account).await?;
    insert_codes(tx, codes).await
}

async fn delete_for(tx: &mut Transaction<'_, Any>, table: &str, account: &AccountId) -> Result<(), StoreError> {
    sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
        .bind(account.as_str())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
    Ok(())
}

#[async_trait]
impl FactorStore for SqlStore {
    async fn replace_enrollment(&self, e: &EnrollmentRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        delete_for(&mut tx, "totp_enrollments", &e.account_id).await?;
        sqlx::query(
            "INSERT INTO totp_enrollments (id, account_id, secret_sealed, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(e.id.as_str())
        .bind(e.account_id.as_str())
        .bind(&e.secret_sealed)
        .bind(e.created_at.secs())
        .bind(e.expires_at.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn enrollment(&self, id: &EnrollmentId) -> Result<Option<EnrollmentRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, secret_sealed, created_at, expires_at FROM totp_enrollments WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        row.map(|r| {
            Ok(EnrollmentRecord {
                id: EnrollmentId::from_stored(text(&r, "id")?),
                account_id: AccountId::from_stored(text(&r, "account_id")?),
                secret_sealed: blob(&r, "secret_sealed")?,
                created_at: ts(&r, "created_at")?,
                expires_at: ts(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn confirm_enrollment(
        &self,
        enrollment: &EnrollmentId,
        a: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<ConfirmOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let gone = sqlx::query("DELETE FROM totp_enrollments WHERE id = $1 AND account_id = $2")
            .bind(enrollment.as_str())
            .bind(a.account_id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?
            .rows_affected()
            == 0;
        if gone {
            return Ok(ConfirmOutcome::Gone);
        }
        let existing = count_authenticators(&mut tx, &a.account_id).await?;
        insert_authenticator(&mut tx, a).await?;
        let first = existing == 0;
        if first {
            delete_for(&mut tx, "recovery_codes", &a.account_id).await?;
            insert_codes(&mut tx, codes).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(ConfirmOutcome::Added { first })
    }

    async fn add_phone(
        &self,
        a: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<PhoneOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let existing = count_authenticators(&mut tx, &a.account_id).await?;
        let replaced = sqlx::query("DELETE FROM authenticators WHERE account_id = $1 AND kind = $2")
            .bind(a.account_id.as_str())
            .bind(&a.kind)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?
            .rows_affected()
            > 0;
        insert_authenticator(&mut tx, a).await?;
        let first = existing == 0;
        if first {
            delete_for(&mut tx, "recovery_codes", &a.account_id).await?;
            insert_codes(&mut tx, codes).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(PhoneOutcome { first, replaced })
    }

    async fn authenticators(&self, account: &AccountId) -> Result<Vec<AuthenticatorRecord>, StoreError> {
        let q = Stmt::new(
            "SELECT id, account_id, kind, name, secret_sealed, last_step, created_at, last_used_at
             FROM authenticators WHERE account_id = $1 ORDER BY created_at, id",
        )
        .arg(account.as_str());
        self.read_all(&q, |r| authenticator(r)).await
    }

    async fn set_preferred_method(
        &self,
        account: &AccountId,
        method: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        match method {
            Some(m) => sqlx::query(
                "INSERT INTO method_preferences (account_id, method, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id) DO UPDATE SET method = excluded.method, updated_at = excluded.updated_at",
            )
            .bind(account.as_str())
            .bind(m)
            .bind(now.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?,
            None => sqlx::query("DELETE FROM method_preferences WHERE account_id = $1")
                .bind(account.as_str())
                .execute(&self.pool)
                .await
                .map_err(store_err)?,
        };
        Ok(())
    }

    async fn factor_summary(&self, account: &AccountId, scopes: &[String]) -> Result<FactorSummary, StoreError> {
        let q = summary_read(account, scopes);
        let rows = self
            .read_all(&q, |r| Ok((r.text("tag")?, r.opt_text("name")?, r.int("a")?, r.int("b")?, r.int("c")?)))
            .await?;
        let mut summary = FactorSummary::default();
        for (tag, name, a, b, c) in rows {
            match (tag.as_str(), name) {
                ("k", Some(kind)) => summary.kinds.push(kind),
                ("r", _) => summary.unused_recovery_codes = usize::try_from(a).unwrap_or(0),
                ("p", preferred) => summary.preferred = preferred,
                ("c", Some(scope)) => summary.counters.push((
                    scope,
                    Counter {
                        failures: a,
                        last_failure_at: Timestamp::from_secs(b),
                        window_start: Timestamp::from_secs(c),
                    },
                )),
                (tag, _) => return Err(StoreError::Backend(format!("factor_summary: unexpected row {tag}"))),
            }
        }
        summary.kinds.sort();
        summary.kinds.dedup();
        Ok(summary)
    }

    async fn commit_proof(&self, writes: &ProofWrites, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        if !write_proof(&mut tx, writes, now).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_authenticator(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
    ) -> Result<Option<usize>, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM authenticators WHERE id = $1 AND account_id = $2")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?
            .rows_affected();
        if deleted == 0 {
            return Ok(None);
        }
        let remaining: i64 = sqlx::query("SELECT COUNT(*) FROM authenticators WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_one(&mut **tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(store_err)?;
        if remaining == 0 {
            delete_for(&mut tx, "recovery_codes", account).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(Some(usize::try_from(remaining).unwrap_or(0)))
    }

    async fn delete_all_factors(&self, account: &AccountId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for table in ["authenticators", "totp_enrollments", "recovery_codes", "login_tokens"] {
            delete_for(&mut tx, table, account).await?;
        }
        tx.commit().await.map_err(store_err)
    }

    async fn recovery_codes(&self, account: &AccountId) -> Result<Vec<RecoveryCodeRecord>, StoreError> {
        sqlx::query(
            "SELECT id, account_id, lookup, code_sealed, position, created_at, used_at
             FROM recovery_codes WHERE account_id = $1 ORDER BY position",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(recovery)
        .collect()
    }

    async fn replace_recovery_codes(
        &self,
        account: &AccountId,
        codes: &[RecoveryCodeRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        delete_for(&mut tx, "recovery_codes", account).await?;
        insert_codes(&mut tx, codes).await?;
        tx.commit().await.map_err(store_err)
    }

    async fn use_recovery_code(&self, id: &RecoveryCodeId, now: Timestamp) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now.secs())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected() == 1)
    }
}

pub(crate) async fn count_authenticators(
    tx: &mut Transaction<'_, Any>,
    account: &AccountId,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM authenticators WHERE account_id = $1")
        .bind(account.as_str())
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(store_err)
}

pub(crate) async fn insert_authenticator(
    tx: &mut Transaction<'_, Any>,
    a: &AuthenticatorRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO authenticators (id, account_id, kind, name, secret_sealed, last_step, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id.as_str())
    .bind(a.account_id.as_str())
    .bind(&a.kind)
    .bind(&a.name)
    .bind(&a.secret_sealed)
    .bind(a.last_step)
    .bind(a.created_at.secs())
    .bind(opt_secs(a.last_used_at))
    .execute(&mut **tx)
    .await
    .map_err(store_err)?;
    Ok(())
}

/// A right proof's writes, in `tx`: the replay guard first, as the one
/// atomic statement that decides (false, and the caller drops `tx`, when
/// its step is spent), then the counters it clears and its audit rows.
pub(crate) async fn write_proof(tx: &mut Tx<'_>, writes: &ProofWrites, now: Timestamp) -> Result<bool, StoreError> {
    if let Some(spend) = &writes.step {
        let guard =
            Stmt::new("UPDATE authenticators SET last_step = $1, last_used_at = $2 WHERE id = $3 AND last_step < $1")
                .arg(spend.step)
                .arg(now.secs())
                .arg(spend.authenticator.as_str());
        if tx.run(&guard).await? != 1 {
            return Ok(false);
        }
    }
    if let Some(reset) = crate::throttle::reset_stmt(&writes.reset) {
        tx.run(&reset).await?;
    }
    for e in &writes.audit {
        tx.run(&crate::audit::insert_entry(e)).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: the summary is read on every `/me` and sign-in step. At
    /// 1,000,000 accounts an index on `account_id` alone sent each part on
    /// to its table, ten rows of a 10,000,000-row table for the recovery
    /// codes; each part must now be answered from its index (SQLite's
    /// plan; PostgreSQL gets the same indexes).
    #[tokio::test]
    async fn the_factor_summary_is_answered_from_indexes_alone() {
        let dir = std::env::temp_dir().join(format!("twostep-plan-{}", uuid::Uuid::new_v4()));
        let store = SqlStore::connect(&format!("sqlite://{}/t.db", dir.display())).await.expect("open");
        store.migrate().await.expect("migrate");
        let account = AccountId::from_stored("a");
        let scopes = vec!["totp:a".to_owned(), "second_factor:a".to_owned()];
        let read = summary_read(&account, &scopes);
        let explain = Stmt { sql: format!("EXPLAIN QUERY PLAN {}", read.sql).into(), args: read.args.clone() };
        let plan = store.read_all(&explain, |r| r.text("detail")).await.expect("plan");
        for part in [
            "SEARCH authenticators USING COVERING INDEX authenticators_account_kind (account_id=?)",
            "SEARCH recovery_codes USING COVERING INDEX recovery_codes_unused (account_id=? AND used_at=?)",
            "SEARCH method_preferences USING INDEX sqlite_autoindex_method_preferences_1 (account_id=?)",
            "SEARCH throttle_counters USING INDEX sqlite_autoindex_throttle_counters_1 (scope=?)",
        ] {
            assert!(plan.iter().any(|line| line == part), "{part} not in {plan:#?}");
        }
        assert!(!plan.iter().any(|line| line.starts_with("SCAN") || line.contains("TEMP B-TREE")), "{plan:#?}");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
