//! Per-account IP allow-lists.

use async_trait::async_trait;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::store::{AllowlistRecord, AllowlistStore};

use crate::accounts::{text, ts};
use crate::sql::Stmt;
use crate::{SqlStore, store_err};

#[async_trait]
impl AllowlistStore for SqlStore {
    async fn allowlist(&self, account: &AccountId) -> Result<Vec<AllowlistRecord>, StoreError> {
        let q =
            Stmt::new("SELECT cidr, label, created_at FROM ip_allowlist WHERE account_id = $1 ORDER BY position, cidr")
                .arg(account.as_str());
        self.read_all(&q, |r| {
            Ok(AllowlistRecord {
                account_id: account.clone(),
                cidr: text(r, "cidr")?,
                label: text(r, "label")?,
                created_at: ts(r, "created_at")?,
            })
        })
        .await
    }

    async fn replace_allowlist(&self, account: &AccountId, entries: &[AllowlistRecord]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM ip_allowlist WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        for (position, e) in (0_i64..).zip(entries) {
            sqlx::query(
                "INSERT INTO ip_allowlist (account_id, cidr, label, position, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(account.as_str())
            .bind(&e.cidr)
            .bind(&e.label)
            .bind(position)
            .bind(e.created_at.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }
}
