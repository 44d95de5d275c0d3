//! Rate-limit allowances: a conditional upsert on the throttle counters'
//! row, so the check and the count are one atomic statement on both engines.

use async_trait::async_trait;
use sqlx::Row;
use twostep_domain::error::StoreError;
use twostep_domain::ports::AllowanceStore;
use twostep_domain::time::Timestamp;

use crate::{SqlStore, store_err};

#[async_trait]
impl AllowanceStore for SqlStore {
    async fn take_allowance(
        &self,
        scope: &str,
        now: Timestamp,
        window_secs: i64,
        cap: i64,
    ) -> Result<Option<i64>, StoreError> {
        // The `WHERE` of `DO UPDATE` is evaluated on the row as locked by the
        // upsert (PostgreSQL re-checks it against the latest version; SQLite
        // serialises writers), so no two callers both see the last free slot.
        // When it is false, nothing is updated and nothing returned: refused.
        let row = sqlx::query(
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
        .bind(now.secs().saturating_sub(window_secs))
        .bind(cap)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        row.map(|r| r.try_get::<i64, _>(0).map_err(store_err)).transpose()
    }
}
