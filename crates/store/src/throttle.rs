//! Throttle counters: atomic upserts, so concurrent failures on any
//! instance are all counted.

use async_trait::async_trait;
use sqlx::Row;
use twostep_domain::abuse::store::ThrottleStore;
use twostep_domain::abuse::throttle::{Admission, Counter, TokenTried, TokenTry, Verdict};
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::time::Timestamp;

use crate::accounts::{text, ts};
use crate::exec::Tx;
use crate::sql::{Cols, Stmt};
use crate::{SqlStore, store_err};

/// `$first, $first+1, …` for `n` parameters.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn counter_of(r: &(impl Cols + ?Sized)) -> Result<Counter, StoreError> {
    Ok(Counter {
        failures: r.int("failures")?,
        last_failure_at: ts(r, "last_failure_at")?,
        window_start: ts(r, "window_start")?,
    })
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn counter(&self, scope: &str) -> Result<Option<Counter>, StoreError> {
        let q = Stmt::new("SELECT failures, last_failure_at, window_start FROM throttle_counters WHERE scope = $1")
            .arg(scope);
        self.read_opt(&q, |r| counter_of(r)).await
    }

    /// A `Stmt`, so that on SQLite the second step's throttle check runs on
    /// a direct reader with its statement prepared once.
    async fn counters(&self, scopes: &[String]) -> Result<Vec<(String, Counter)>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT scope, failures, last_failure_at, window_start FROM throttle_counters WHERE scope IN ({})",
            placeholders(1, scopes.len())
        );
        let q = scopes.iter().fold(Stmt::new(sql), Stmt::arg);
        self.read_all(&q, |r| Ok((r.text("scope")?, counter_of(r)?))).await
    }

    async fn record_failures(
        &self,
        scopes: &[String],
        now: Timestamp,
        window_secs: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        // One multi-row upsert: atomic, one commit.
        let values = (0..scopes.len()).map(|i| format!("(${}, 1, $1, $1)", i + 3)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "INSERT INTO throttle_counters (scope, failures, last_failure_at, window_start) VALUES {values}
             ON CONFLICT (scope) DO UPDATE SET
                failures = CASE WHEN throttle_counters.window_start <= $2 THEN 1
                                ELSE throttle_counters.failures + 1 END,
                window_start = CASE WHEN throttle_counters.window_start <= $2 THEN $1
                                    ELSE throttle_counters.window_start END,
                last_failure_at = $1
             RETURNING scope, failures"
        );
        let mut q = Stmt::new(sql).arg(now.secs()).arg(now.secs().saturating_sub(window_secs));
        for scope in scopes {
            q = q.arg(scope);
        }
        let rows = self.write_all(&q, |r| Ok((text(r, "scope")?, r.int("failures")?))).await?;
        let mut counts = Vec::with_capacity(scopes.len());
        for scope in scopes {
            counts.push(*row_of(&rows, scope, "upsert")?);
        }
        Ok(counts)
    }

    async fn admit(
        &self,
        scopes: &[(String, i64)],
        token: Option<TokenTry<'_>>,
        now: Timestamp,
        judge: &(dyn for<'c> Fn(&'c [Counter]) -> Verdict + Send + Sync),
    ) -> Result<Admission, StoreError> {
        if scopes.is_empty() && token.is_none() {
            return Ok(Admission { verdict: judge(&[]), counts: Vec::new(), token: TokenTried::NotCounted });
        }
        let mut tx = self.write_tx().await?;
        let read = if scopes.is_empty() { Vec::new() } else { lock_counters(&mut tx, scopes, now).await? };
        let verdict = judge(&read);
        let as_read = || read.iter().map(|c| c.failures).collect();
        if verdict != Verdict::Allow {
            // Rolls back, dropping the zero rows it made.
            return Ok(Admission { verdict, counts: as_read(), token: TokenTried::NotCounted });
        }
        // The token's row is locked after the counters', as every other
        // writer of both does (a sign-in's commit), so two cannot deadlock.
        let token = match token {
            None => TokenTried::NotCounted,
            Some(t) => {
                let take = Stmt::new(
                    "UPDATE login_tokens SET failures = failures + 1
                     WHERE id = $1 AND expires_at > $2 AND failures < $3 RETURNING failures",
                )
                .arg(t.id.as_str())
                .arg(now.secs())
                .arg(t.max_failures);
                match tx.all(&take, |r| r.int("failures")).await?.first() {
                    Some(failures) => TokenTried::Counted { failures: *failures },
                    None => return Ok(Admission { verdict, counts: as_read(), token: TokenTried::Gone }),
                }
            }
        };
        let counts = if scopes.is_empty() { Vec::new() } else { count_attempt(&mut tx, scopes, now).await? };
        tx.commit().await?;
        Ok(Admission { verdict, counts, token })
    }

    async fn take_allowance(
        &self,
        scope: &str,
        now: Timestamp,
        window_secs: i64,
        cap: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _gate = self.pool_gate().await;
        // A window that has run out starts again at 1; otherwise the count
        // grows only while below the cap. When the WHERE refuses, nothing is
        // written and nothing returned: the decision and the count are one
        // statement (a row lock on PostgreSQL, the one writer on SQLite).
        let window_from = now.secs().saturating_sub(window_secs);
        let taken = sqlx::query(
            "INSERT INTO throttle_counters (scope, failures, last_failure_at, window_start) VALUES ($1, 1, $2, $2)
             ON CONFLICT (scope) DO UPDATE SET
                failures = CASE WHEN throttle_counters.window_start <= $3 THEN 1
                                ELSE throttle_counters.failures + 1 END,
                window_start = CASE WHEN throttle_counters.window_start <= $3 THEN $2
                                    ELSE throttle_counters.window_start END,
                last_failure_at = $2
             WHERE throttle_counters.window_start <= $3 OR throttle_counters.failures < $4
             RETURNING failures",
        )
        .bind(scope)
        .bind(now.secs())
        .bind(window_from)
        .bind(cap)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        if taken.is_some() {
            return Ok(None);
        }
        // Refused: only the Retry-After is read afterwards, never the decision.
        let start = sqlx::query("SELECT window_start FROM throttle_counters WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| r.try_get::<i64, _>(0).map_err(store_err))
            .transpose()?
            .unwrap_or(now.secs());
        Ok(Some((start + window_secs - now.secs()).max(1)))
    }

    async fn refund(&self, scope: &str) -> Result<(), StoreError> {
        // On every right password (the address's cap counts failures only):
        // through the writer, as the admission that counted it was.
        self.write(
            &Stmt::new("UPDATE throttle_counters SET failures = failures - 1 WHERE scope = $1 AND failures > 0")
                .arg(scope),
        )
        .await?;
        Ok(())
    }

    async fn reset_counters(&self, scopes: &[String]) -> Result<(), StoreError> {
        if let Some(q) = reset_stmt(scopes) {
            self.write(&q).await?;
        }
        Ok(())
    }

    async fn reset_counters_of(&self, account: &AccountId) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        // Scopes end in the account id (see `Scope::key`).
        sqlx::query("DELETE FROM throttle_counters WHERE scope LIKE $1")
            .bind(format!("%:{}", account.as_str()))
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

/// Deletes the counters of `scopes` (`None` when there are none).
pub(crate) fn reset_stmt(scopes: &[String]) -> Option<Stmt<'_>> {
    if scopes.is_empty() {
        return None;
    }
    let q = Stmt::new(format!("DELETE FROM throttle_counters WHERE scope IN ({})", placeholders(1, scopes.len())));
    Some(scopes.iter().fold(q, |q, scope| q.arg(scope.as_str())))
}

/// What a multi-row statement (`what`) returned for one scope.
fn row_of<'r, T>(rows: &'r [(String, T)], key: &str, what: &str) -> Result<&'r T, StoreError> {
    rows.iter()
        .find(|(scope, _)| scope == key)
        .map(|(_, v)| v)
        .ok_or_else(|| StoreError::Backend(format!("{what} returned no row for {key}")))
}

/// Locks the scopes' counters (absent ones created at zero) and reads them
/// in the order of `scopes`. The lock is the transaction's first statement,
/// a write: SQLite takes its one write lock, PostgreSQL locks these rows
/// until commit, in key order so that two callers locking overlapping
/// scopes cannot deadlock. The caller decides while they are held, so no
/// other attempt can slip between the read and the count.
async fn lock_counters(tx: &mut Tx<'_>, scopes: &[(String, i64)], now: Timestamp) -> Result<Vec<Counter>, StoreError> {
    let mut sorted: Vec<&str> = scopes.iter().map(|(k, _)| k.as_str()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let values = (0..sorted.len()).map(|i| format!("(${}, 0, 0, $1)", i + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO throttle_counters (scope, failures, last_failure_at, window_start) VALUES {values}
         ON CONFLICT (scope) DO UPDATE SET failures = throttle_counters.failures
         RETURNING scope, failures, last_failure_at, window_start"
    );
    let mut lock = Stmt::new(sql).arg(now.secs());
    for key in &sorted {
        lock = lock.arg(*key);
    }
    let rows = tx.all(&lock, |r| Ok((text(r, "scope")?, counter_of(r)?))).await?;
    let mut read = Vec::with_capacity(scopes.len());
    for (key, _) in scopes {
        read.push(*row_of(&rows, key, "lock")?);
    }
    Ok(read)
}

/// Counts the attempt in every scope in one statement, each against its
/// own window; the new counts in the order of `scopes`.
async fn count_attempt(tx: &mut Tx<'_>, scopes: &[(String, i64)], now: Timestamp) -> Result<Vec<i64>, StoreError> {
    let cutoff =
        (0..scopes.len()).map(|i| format!("WHEN ${} THEN ${}", 2 * i + 2, 2 * i + 3)).collect::<Vec<_>>().join(" ");
    let keys = (0..scopes.len()).map(|i| format!("${}", 2 * i + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "UPDATE throttle_counters SET
            failures = CASE WHEN window_start <= (CASE scope {cutoff} END) THEN 1 ELSE failures + 1 END,
            window_start = CASE WHEN window_start <= (CASE scope {cutoff} END) THEN $1 ELSE window_start END,
            last_failure_at = $1
         WHERE scope IN ({keys}) RETURNING scope, failures"
    );
    let mut count = Stmt::new(sql).arg(now.secs());
    for (key, window_secs) in scopes {
        count = count.arg(key.as_str()).arg(now.secs().saturating_sub(*window_secs));
    }
    let rows = tx.all(&count, |r| Ok((text(r, "scope")?, r.int("failures")?))).await?;
    let mut counts = Vec::with_capacity(scopes.len());
    for (key, _) in scopes {
        counts.push(*row_of(&rows, key, "count")?);
    }
    Ok(counts)
}
