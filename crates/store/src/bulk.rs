//! Bulk loading for benchmarks only (`twostep dev seed`, `scripts/bench`):
//! multi-row INSERTs inside one transaction per call, so a million accounts
//! load in minutes rather than the hours one INSERT per row would take. The
//! server never calls these; the rows must already be what the domain would
//! have written (hashed tokens, sealed secrets).

use std::time::{Duration, Instant};

use sqlx::{Any, Transaction};
use twostep_domain::accounts::store::AccountRecord;
use twostep_domain::error::StoreError;
use twostep_domain::factors::store::{AuthenticatorRecord, RecoveryCodeRecord};
use twostep_domain::ids::AuthenticatorId;
use twostep_domain::sessions::store::{LoginTokenRecord, SessionRecord};
use twostep_domain::time::Timestamp;

use crate::accounts::opt_secs;
use crate::{Backend, SqlStore, store_err};

/// Parameters per statement: below SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 8_000;

/// `INSERT INTO table (columns) VALUES ($1, …), (…)` for `rows` rows. SQLite
/// gets anonymous `?` placeholders: sqlx resolves each `$n` by name, which
/// SQLite looks up in a list, so thousands of `$n` cost quadratic time.
fn insert_sql(backend: Backend, table: &str, columns: &[&str], rows: usize) -> String {
    let width = columns.len();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            if backend == Backend::Sqlite {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&(r * width + c + 1).to_string());
            }
        }
        sql.push(')');
    }
    sql
}

/// Rows per statement for a table of `width` columns.
fn chunk_rows(width: usize) -> usize {
    (MAX_PARAMS / width).max(1)
}

/// Inserts `rows` in chunks; `bind` binds one row's values in column order.
macro_rules! insert_chunks {
    ($backend:expr, $tx:expr, $table:expr, $columns:expr, $rows:expr, |$q:ident, $r:ident| $bind:expr) => {{
        let columns: &[&str] = $columns;
        for chunk in $rows.chunks(chunk_rows(columns.len())) {
            let sql = insert_sql($backend, $table, columns, chunk.len());
            let mut $q = sqlx::query::<Any>(&sql);
            for $r in chunk {
                $q = $bind;
            }
            $q.execute(&mut **$tx).await.map_err(store_err)?;
        }
    }};
}

async fn accounts(backend: Backend, tx: &mut Transaction<'_, Any>, rows: &[AccountRecord]) -> Result<(), StoreError> {
    insert_chunks!(
        backend,
        tx,
        "accounts",
        &["id", "email", "password_hash", "created_at", "disabled_at", "last_sign_in_at"],
        rows,
        |q, a| q
            .bind(a.id.as_str())
            .bind(a.email.as_str())
            .bind(a.password_hash.as_str())
            .bind(a.created_at.secs())
            .bind(opt_secs(a.disabled_at))
            .bind(opt_secs(a.last_sign_in_at))
    );
    Ok(())
}

async fn authenticators(
    backend: Backend,
    tx: &mut Transaction<'_, Any>,
    rows: &[AuthenticatorRecord],
) -> Result<(), StoreError> {
    insert_chunks!(
        backend,
        tx,
        "authenticators",
        &["id", "account_id", "kind", "name", "secret_sealed", "last_step", "created_at", "last_used_at"],
        rows,
        |q, a| q
            .bind(a.id.as_str())
            .bind(a.account_id.as_str())
            .bind(a.kind.as_str())
            .bind(a.name.as_str())
            .bind(a.secret_sealed.as_slice())
            .bind(a.last_step)
            .bind(a.created_at.secs())
            .bind(opt_secs(a.last_used_at))
    );
    Ok(())
}

async fn recovery_codes(
    backend: Backend,
    tx: &mut Transaction<'_, Any>,
    rows: &[RecoveryCodeRecord],
) -> Result<(), StoreError> {
    insert_chunks!(
        backend,
        tx,
        "recovery_codes",
        &["id", "account_id", "lookup", "code_sealed", "position", "created_at", "used_at"],
        rows,
        |q, c| q
            .bind(c.id.as_str())
            .bind(c.account_id.as_str())
            .bind(c.lookup.as_slice())
            .bind(c.code_sealed.as_slice())
            .bind(c.position)
            .bind(c.created_at.secs())
            .bind(opt_secs(c.used_at))
    );
    Ok(())
}

async fn sessions(backend: Backend, tx: &mut Transaction<'_, Any>, rows: &[SessionRecord]) -> Result<(), StoreError> {
    insert_chunks!(
        backend,
        tx,
        "sessions",
        &[
            "id",
            "account_id",
            "kind",
            "created_at",
            "last_seen_at",
            "expires_at",
            "password_at",
            "second_factor_at",
            "ip",
            "user_agent"
        ],
        rows,
        |q, s| q
            .bind(s.id.as_str())
            .bind(s.account_id.as_str())
            .bind(s.kind.as_str())
            .bind(s.created_at.secs())
            .bind(s.last_seen_at.secs())
            .bind(s.expires_at.secs())
            .bind(opt_secs(s.password_at))
            .bind(opt_secs(s.second_factor_at))
            .bind(s.ip.as_str())
            .bind(s.user_agent.as_str())
    );
    Ok(())
}

async fn login_tokens(
    backend: Backend,
    tx: &mut Transaction<'_, Any>,
    rows: &[LoginTokenRecord],
) -> Result<(), StoreError> {
    insert_chunks!(
        backend,
        tx,
        "login_tokens",
        &["id", "account_id", "created_at", "expires_at", "failures"],
        rows,
        |q, t| q
            .bind(t.id.as_str())
            .bind(t.account_id.as_str())
            .bind(t.created_at.secs())
            .bind(t.expires_at.secs())
            .bind(t.failures)
    );
    Ok(())
}

impl SqlStore {
    /// Benchmarks only: inserts accounts with their authenticators and
    /// recovery codes in one transaction.
    pub async fn bulk_insert_accounts(
        &self,
        rows: &[AccountRecord],
        authenticator_rows: &[AuthenticatorRecord],
        code_rows: &[RecoveryCodeRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Sqlite {
            // Random UUID keys land all over the indexes: with SQLite's
            // default 2 MB page cache most inserts would reread pages.
            sqlx::query("PRAGMA cache_size = -262144").execute(&mut **tx).await.map_err(store_err)?;
        }
        accounts(self.backend, &mut tx, rows).await?;
        authenticators(self.backend, &mut tx, authenticator_rows).await?;
        recovery_codes(self.backend, &mut tx, code_rows).await?;
        tx.commit().await.map_err(store_err)
    }

    /// Benchmarks only: inserts sessions and login tokens in one transaction.
    pub async fn bulk_insert_tokens(
        &self,
        session_rows: &[SessionRecord],
        login_rows: &[LoginTokenRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sessions(self.backend, &mut tx, session_rows).await?;
        login_tokens(self.backend, &mut tx, login_rows).await?;
        tx.commit().await.map_err(store_err)
    }

    /// Benchmarks only: how many replay-guard commits (`advance_last_step`'s
    /// UPDATE, each its own transaction, one connection) fit in `duration`
    /// with SQLite's `synchronous = FULL` (an fsync of the WAL at every
    /// commit) when `full`, else the shipped NORMAL; `ids` are existing
    /// authenticators, used in turn. The connection is set back to NORMAL
    /// before it returns to the pool. On PostgreSQL `full` is ignored (the
    /// server's own `synchronous_commit` decides).
    pub async fn replay_guard_commit_rate(
        &self,
        full: bool,
        ids: &[AuthenticatorId],
        first_step: i64,
        now: Timestamp,
        duration: Duration,
    ) -> Result<(u64, Duration), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_err)?;
        let sqlite = self.backend == Backend::Sqlite;
        if sqlite && full {
            sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await.map_err(store_err)?;
        }
        // Start above every step already spent, so each UPDATE really writes.
        let mut step = first_step;
        for id in ids {
            let spent: Option<i64> = sqlx::query_scalar("SELECT last_step FROM authenticators WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(store_err)?;
            let spent = spent.ok_or_else(|| StoreError::Backend(format!("no authenticator {id}")))?;
            step = step.max(spent + 1);
        }
        let started = Instant::now();
        let mut commits = 0_u64;
        let result = async {
            while started.elapsed() < duration {
                for id in ids {
                    let r = sqlx::query(
                        "UPDATE authenticators SET last_step = $1, last_used_at = $2 WHERE id = $3 AND last_step < $1",
                    )
                    .bind(step)
                    .bind(now.secs())
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_err)?;
                    if r.rows_affected() != 1 {
                        return Err(StoreError::Backend(format!("authenticator {id} did not advance")));
                    }
                    commits += 1;
                    if started.elapsed() >= duration {
                        break;
                    }
                }
                step += 1;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        let elapsed = started.elapsed();
        if sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await.map_err(store_err)?;
        }
        result.map(|()| (commits, elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(
            insert_sql(Backend::Postgres, "t", &["a", "b"], 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(insert_sql(Backend::Sqlite, "t", &["a"], 2), "INSERT INTO t (a) VALUES (?), (?)");
        assert_eq!(chunk_rows(10), 800);
    }
}
