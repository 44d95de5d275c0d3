//! Named locks held until a transaction ends: a check and the write it
//! guards become one atomic step on every instance sharing the database.

use sqlx::{Any, Transaction};
use twostep_domain::error::StoreError;

use crate::store_err;

/// Takes the lock `name` for the rest of `tx`. It is a write, so it must be
/// the transaction's first statement on SQLite (a read first would make the
/// later upgrade to a write fail instead of wait).
pub(crate) async fn take(tx: &mut Transaction<'_, Any>, name: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO locks (name, uses) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET uses = locks.uses + 1")
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
    Ok(())
}
