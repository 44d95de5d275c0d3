//! Sessions and login tokens, both keyed by the SHA-256 of their token.

use async_trait::async_trait;
use twostep_domain::accounts::store::AccountRecord;
use twostep_domain::audit::AuditEntry;
use twostep_domain::error::StoreError;
use twostep_domain::factors::store::ProofWrites;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::store::AllowlistRecord;
use twostep_domain::sessions::cache::SessionChange;
use twostep_domain::sessions::store::{
    Finished, LoginTokenRecord, SessionKind, SessionLookup, SessionRecord, SessionStore,
};
use twostep_domain::time::Timestamp;
use twostep_domain::token::TokenHash;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::sql::{Cols, Prefixed, Stmt};
use crate::{SqlStore, store_err};

fn session(row: &(impl Cols + ?Sized)) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: TokenHash::from_stored(text(row, "id")?),
        account_id: AccountId::from_stored(text(row, "account_id")?),
        kind: SessionKind::from_stored(&text(row, "kind")?),
        created_at: ts(row, "created_at")?,
        last_seen_at: ts(row, "last_seen_at")?,
        expires_at: ts(row, "expires_at")?,
        password_at: opt_ts(row, "password_at")?,
        second_factor_at: opt_ts(row, "second_factor_at")?,
        ip: text(row, "ip")?,
        user_agent: text(row, "user_agent")?,
    })
}

/// `session_lookup`'s join: one row per allow-list entry (or one row with
/// NULL list columns when the list is empty). Columns are aliased because
/// the three tables share names.
const LOOKUP: &str =
    "SELECT s.id AS s_id, s.account_id AS s_account_id, s.kind AS s_kind, s.created_at AS s_created_at,
        s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at, s.password_at AS s_password_at,
        s.second_factor_at AS s_second_factor_at, s.ip AS s_ip, s.user_agent AS s_user_agent,
        a.id AS a_id, a.email AS a_email, a.password_hash AS a_password_hash, a.created_at AS a_created_at,
        a.disabled_at AS a_disabled_at, a.last_sign_in_at AS a_last_sign_in_at,
        a.email_verified_at AS a_email_verified_at, a.admin_since AS a_admin_since,
        l.cidr AS l_cidr, l.label AS l_label, l.created_at AS l_created_at
     FROM sessions s
     JOIN accounts a ON a.id = s.account_id
     LEFT JOIN ip_allowlist l ON l.account_id = s.account_id
     WHERE s.id = $1
     ORDER BY l.position, l.cidr";

/// One row of `LOOKUP`: the session and account (the same on every row)
/// and one allow-list entry, if the list has any.
fn lookup_row(r: &dyn Cols) -> Result<(SessionRecord, AccountRecord, Option<AllowlistRecord>), StoreError> {
    let session = session(&Prefixed { row: r, prefix: "s_" })?;
    let account = crate::accounts::account(&Prefixed { row: r, prefix: "a_" })?;
    let account_id = account.id.clone();
    let entry = match r.opt_text("l_cidr")? {
        Some(cidr) => {
            Some(AllowlistRecord { account_id, cidr, label: text(r, "l_label")?, created_at: ts(r, "l_created_at")? })
        }
        None => None,
    };
    Ok((session, account, entry))
}

/// The INSERT of a session, for the pool or a transaction.
fn insert_session(s: &SessionRecord) -> Stmt<'_> {
    Stmt::new(
        "INSERT INTO sessions (id, account_id, kind, created_at, last_seen_at, expires_at,
                               password_at, second_factor_at, ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(s.id.as_str())
    .arg(s.account_id.as_str())
    .arg(s.kind.as_str())
    .arg(s.created_at.secs())
    .arg(s.last_seen_at.secs())
    .arg(s.expires_at.secs())
    .arg(opt_secs(s.password_at))
    .arg(opt_secs(s.second_factor_at))
    .arg(s.ip.as_str())
    .arg(s.user_agent.as_str())
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        self.write(&insert_session(s)).await?;
        Ok(())
    }

    async fn session_lookup(&self, id: &TokenHash) -> Result<Option<SessionLookup>, StoreError> {
        let rows = self.read_all(&Stmt::new(LOOKUP).arg(id.as_str()), lookup_row).await?;
        let mut rows = rows.into_iter();
        let Some((session, account, first)) = rows.next() else { return Ok(None) };
        let allowlist = first.into_iter().chain(rows.filter_map(|(_, _, entry)| entry)).collect();
        Ok(Some(SessionLookup { session, account, allowlist }))
    }

    async fn touch_session(&self, id: &TokenHash, at: Timestamp) -> Result<(), StoreError> {
        self.write(&Stmt::new("UPDATE sessions SET last_seen_at = $1 WHERE id = $2").arg(at.secs()).arg(id.as_str()))
            .await?;
        Ok(())
    }

    async fn record_proofs(
        &self,
        id: &TokenHash,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "UPDATE sessions SET password_at = COALESCE($1, password_at),
                                 second_factor_at = COALESCE($2, second_factor_at)
             WHERE id = $3",
        )
        .bind(opt_secs(password_at))
        .bind(opt_secs(second_factor_at))
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn set_session_kind(&self, id: &TokenHash, kind: SessionKind) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("UPDATE sessions SET kind = $1 WHERE id = $2")
            .bind(kind.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn rotate_session(&self, old: &TokenHash, new: &TokenHash) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("UPDATE sessions SET id = $1 WHERE id = $2")
            .bind(new.as_str())
            .bind(old.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_session(&self, id: &TokenHash) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn delete_sessions_of(&self, account: &AccountId, keep: Option<&TokenHash>) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
            .bind(account.as_str())
            .bind(keep.map_or("", TokenHash::as_str))
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected())
    }

    async fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query(
            "SELECT id, account_id, kind, created_at, last_seen_at, expires_at, password_at,
                    second_factor_at, ip, user_agent
             FROM sessions WHERE account_id = $1 ORDER BY last_seen_at DESC, id",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(session)
        .collect()
    }

    async fn announce(&self, change: &SessionChange) -> Result<(), StoreError> {
        match self.backend {
            crate::Backend::Postgres => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(crate::session_watch::SESSION_CHANNEL)
                    .bind(change.to_payload())
                    .execute(&self.pool)
                    .await
                    .map_err(store_err)?;
            }
            crate::Backend::Sqlite => {
                let Some(path) = &self.marker else { return Ok(()) };
                crate::session_watch::bump_marker(path)
                    .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }

    async fn insert_login_token(&self, t: &LoginTokenRecord) -> Result<(), StoreError> {
        let insert = Stmt::new(
            "INSERT INTO login_tokens (id, account_id, created_at, expires_at, failures)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(t.id.as_str())
        .arg(t.account_id.as_str())
        .arg(t.created_at.secs())
        .arg(t.expires_at.secs())
        .arg(t.failures);
        self.write(&insert).await?;
        Ok(())
    }

    async fn login_token(&self, id: &TokenHash) -> Result<Option<LoginTokenRecord>, StoreError> {
        let q = Stmt::new("SELECT id, account_id, created_at, expires_at, failures FROM login_tokens WHERE id = $1")
            .arg(id.as_str());
        self.read_opt(&q, login_token_of).await
    }

    async fn finish_sign_in(
        &self,
        login_token: &TokenHash,
        now: Timestamp,
        s: &SessionRecord,
        proof: &ProofWrites,
        audit: &[AuditEntry],
    ) -> Result<Finished, StoreError> {
        // Dropping the transaction before its commit rolls it back.
        let mut tx = self.write_tx().await?;
        if !crate::factors::write_proof(&mut tx, proof, now).await? {
            return Ok(Finished::ProofSpent);
        }
        let consume = Stmt::new("DELETE FROM login_tokens WHERE id = $1 AND expires_at > $2")
            .arg(login_token.as_str())
            .arg(now.secs());
        if tx.run(&consume).await? != 1 {
            return Ok(Finished::TokenGone);
        }
        tx.run(&insert_session(s)).await?;
        let signed_in = Stmt::new("UPDATE accounts SET last_sign_in_at = $1 WHERE id = $2")
            .arg(s.created_at.secs())
            .arg(s.account_id.as_str());
        tx.run(&signed_in).await?;
        for e in audit {
            tx.run(&crate::audit::insert_entry(e)).await?;
        }
        tx.commit().await?;
        Ok(Finished::SignedIn)
    }
}

fn login_token_of(r: &dyn Cols) -> Result<LoginTokenRecord, StoreError> {
    Ok(LoginTokenRecord {
        id: TokenHash::from_stored(text(r, "id")?),
        account_id: AccountId::from_stored(text(r, "account_id")?),
        created_at: ts(r, "created_at")?,
        expires_at: ts(r, "expires_at")?,
        failures: r.int("failures")?,
    })
}
