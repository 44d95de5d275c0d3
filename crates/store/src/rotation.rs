//! Key rotation's storage: sealed values by column (the column names come
//! from the domain's fixed list, never from input), a compare-and-swap per
//! value, the rotation's progress and the sealed server secrets.

use async_trait::async_trait;
use sqlx::Row;
use twostep_domain::crypto::SealedColumn;
use twostep_domain::error::StoreError;
use twostep_domain::rotation::store::{RotationRecord, RotationStore, SealedRow};
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::{SqlStore, store_err};

#[async_trait]
impl RotationStore for SqlStore {
    async fn sealed_rows(&self, column: SealedColumn, after: &str, limit: i64) -> Result<Vec<SealedRow>, StoreError> {
        let (table, id, col) = (column.table(), column.id_column(), column.column());
        sqlx::query(&format!(
            "SELECT {id} AS id, {col} AS sealed FROM {table}
             WHERE {id} > $1 AND {col} IS NOT NULL ORDER BY {id} LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|row| {
            Ok(SealedRow { id: text(row, "id")?, sealed: row.try_get::<Vec<u8>, _>("sealed").map_err(store_err)? })
        })
        .collect()
    }

    async fn reseal(
        &self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
        lookup: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let (table, id_col, col) = (column.table(), column.id_column(), column.column());
        let done = if let Some(lookup) = lookup {
            let sql = format!("UPDATE {table} SET {col} = $1, lookup = $2 WHERE {id_col} = $3 AND {col} = $4");
            sqlx::query(&sql).bind(new).bind(lookup).bind(id).bind(old).execute(&self.pool).await
        } else {
            let sql = format!("UPDATE {table} SET {col} = $1 WHERE {id_col} = $2 AND {col} = $3");
            sqlx::query(&sql).bind(new).bind(id).bind(old).execute(&self.pool).await
        }
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotation(&self) -> Result<Option<RotationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT target, started_at, finished_at, column_name, cursor, resealed FROM key_rotations
             ORDER BY started_at DESC, target LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        row.map(|row| {
            Ok(RotationRecord {
                target: text(&row, "target")?,
                started_at: ts(&row, "started_at")?,
                finished_at: opt_ts(&row, "finished_at")?,
                column: text(&row, "column_name")?,
                cursor: text(&row, "cursor")?,
                resealed: row.try_get::<i64, _>("resealed").map_err(store_err)?,
            })
        })
        .transpose()
    }

    async fn save_rotation(&self, r: &RotationRecord) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "INSERT INTO key_rotations (target, started_at, finished_at, column_name, cursor, resealed)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (target) DO UPDATE SET finished_at = excluded.finished_at,
                 column_name = excluded.column_name, cursor = excluded.cursor, resealed = excluded.resealed",
        )
        .bind(&r.target)
        .bind(r.started_at.secs())
        .bind(opt_secs(r.finished_at))
        .bind(&r.column)
        .bind(&r.cursor)
        .bind(r.resealed)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value_sealed FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| r.try_get::<Vec<u8>, _>("value_sealed").map_err(store_err)).transpose()
    }

    async fn add_server_secret(&self, name: &str, sealed: &[u8], now: Timestamp) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query(
            "INSERT INTO server_secrets (name, value_sealed, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(sealed)
        .bind(now.secs())
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }
}
