//! Throttle counters: atomic upserts, so concurrent failures on any
//! instance are all counted.

use async_trait::async_trait;
use sqlx::Row;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::ports::ThrottleStore;
use twostep_domain::throttle::Counter;
use twostep_domain::time::Timestamp;

use crate::accounts::ts;
use crate::{SqlStore, store_err};

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn counter(&self, scope: &str) -> Result<Option<Counter>, StoreError> {
        let row = sqlx::query("SELECT failures, last_failure_at, window_start FROM throttle_counters WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| {
            Ok(Counter {
                failures: r.try_get::<i64, _>("failures").map_err(store_err)?,
                last_failure_at: ts(&r, "last_failure_at")?,
                window_start: ts(&r, "window_start")?,
            })
        })
        .transpose()
    }

    async fn record_failure(&self, scope: &str, now: Timestamp, window_secs: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO throttle_counters (scope, failures, last_failure_at, window_start) VALUES ($1, 1, $2, $2)
             ON CONFLICT (scope) DO UPDATE SET
                failures = CASE WHEN throttle_counters.window_start <= $3 THEN 1
                                ELSE throttle_counters.failures + 1 END,
                window_start = CASE WHEN throttle_counters.window_start <= $3 THEN $2
                                    ELSE throttle_counters.window_start END,
                last_failure_at = $2
             RETURNING failures",
        )
        .bind(scope)
        .bind(now.secs())
        .bind(now.secs().saturating_sub(window_secs))
        .fetch_one(&self.pool)
        .await
        .map_err(store_err)?;
        row.try_get::<i64, _>(0).map_err(store_err)
    }

    async fn reset_counter(&self, scope: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle_counters WHERE scope = $1")
            .bind(scope)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn reset_counters_of(&self, account: &AccountId) -> Result<(), StoreError> {
        // Scopes end in the account id (see `Scope::key`).
        sqlx::query("DELETE FROM throttle_counters WHERE scope LIKE $1")
            .bind(format!("%:{}", account.as_str()))
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
