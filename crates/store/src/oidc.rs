//! The OpenID Connect provider's storage. Codes and refresh tokens are
//! spent by one conditional `UPDATE … RETURNING`: of any number of
//! requests presenting the same one, on one server or several, exactly one
//! gets the row back.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::oidc::store::{
    ClientRecord, CodeRecord, GrantRecord, LiveToken, OidcStore, SigningKeyRecord, Spend, TokenKind, TokenRecord,
};
use twostep_domain::time::Timestamp;

use crate::accounts::{opt_secs, opt_ts, text, ts};
use crate::{SqlStore, store_err};

const CLIENT_COLS: &str = "id, name, secret_hash, redirect_uris, post_logout_uris, require_two_factor, org_id, \
                           skip_consent, id_token_alg, created_at";
const GRANT_COLS: &str =
    "id, client_id, account_id, scope, nonce, auth_time, acr, amr, groups_claim, created_at, revoked_at, session_id";
const CODE_COLS: &str = "hash, grant_id, client_id, redirect_uri, code_challenge, expires_at, consumed_at";
const TOKEN_COLS: &str = "hash, kind, grant_id, client_id, account_id, scope, created_at, expires_at, used_at";

fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(col).map_err(store_err)
}

fn flag(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(col).map_err(store_err)? != 0)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn client(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: text(row, "id")?,
        name: text(row, "name")?,
        secret_hash: opt_text(row, "secret_hash")?,
        redirect_uris: lines(&text(row, "redirect_uris")?),
        post_logout_redirect_uris: lines(&text(row, "post_logout_uris")?),
        require_two_factor: flag(row, "require_two_factor")?,
        org_id: opt_text(row, "org_id")?,
        skip_consent: flag(row, "skip_consent")?,
        id_token_alg: text(row, "id_token_alg")?,
        created_at: ts(row, "created_at")?,
    })
}

fn grant(row: &AnyRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: text(row, "id")?,
        client_id: text(row, "client_id")?,
        account_id: AccountId::from_stored(text(row, "account_id")?),
        scope: text(row, "scope")?,
        nonce: opt_text(row, "nonce")?,
        auth_time: ts(row, "auth_time")?,
        acr: text(row, "acr")?,
        amr: text(row, "amr")?,
        groups: text(row, "groups_claim")?,
        created_at: ts(row, "created_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        session_id: opt_text(row, "session_id")?,
    })
}

fn code(row: &AnyRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        hash: text(row, "hash")?,
        grant_id: text(row, "grant_id")?,
        client_id: text(row, "client_id")?,
        redirect_uri: text(row, "redirect_uri")?,
        code_challenge: text(row, "code_challenge")?,
        expires_at: ts(row, "expires_at")?,
        consumed_at: opt_ts(row, "consumed_at")?,
    })
}

fn token(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        hash: text(row, "hash")?,
        kind: TokenKind::from_stored(&text(row, "kind")?),
        grant_id: text(row, "grant_id")?,
        client_id: text(row, "client_id")?,
        account_id: AccountId::from_stored(text(row, "account_id")?),
        scope: text(row, "scope")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        used_at: opt_ts(row, "used_at")?,
    })
}

fn key(row: &AnyRow) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid: text(row, "kid")?,
        alg: text(row, "alg")?,
        public_jwk: text(row, "public_jwk")?,
        private_sealed: row.try_get::<Vec<u8>, _>("private_sealed").map_err(store_err)?,
        created_at: ts(row, "created_at")?,
        retired_at: opt_ts(row, "retired_at")?,
    })
}

#[async_trait]
impl OidcStore for SqlStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(&format!(
            "INSERT INTO oidc_clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.secret_hash.as_deref())
        .bind(c.redirect_uris.join("\n"))
        .bind(c.post_logout_redirect_uris.join("\n"))
        .bind(i64::from(c.require_two_factor))
        .bind(c.org_id.as_deref())
        .bind(i64::from(c.skip_consent))
        .bind(&c.id_token_alg)
        .bind(c.created_at.secs())
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        sqlx::query(&format!("SELECT {CLIENT_COLS} FROM oidc_clients WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| client(&r))
            .transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        sqlx::query(&format!("SELECT {CLIENT_COLS} FROM oidc_clients ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(client)
            .collect()
    }

    async fn update_client(&self, c: &ClientRecord) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query(
            "UPDATE oidc_clients SET name = $2, secret_hash = $3, redirect_uris = $4, post_logout_uris = $5,
             require_two_factor = $6, org_id = $7, skip_consent = $8, id_token_alg = $9 WHERE id = $1",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.secret_hash.as_deref())
        .bind(c.redirect_uris.join("\n"))
        .bind(c.post_logout_redirect_uris.join("\n"))
        .bind(i64::from(c.require_two_factor))
        .bind(c.org_id.as_deref())
        .bind(i64::from(c.skip_consent))
        .bind(&c.id_token_alg)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Codes and tokens go with their grants (ON DELETE CASCADE), spelled
        // out too for a SQLite connection without foreign keys.
        for sql in [
            "DELETE FROM oidc_tokens WHERE client_id = $1",
            "DELETE FROM oidc_codes WHERE client_id = $1",
            "DELETE FROM oidc_grants WHERE client_id = $1",
            "DELETE FROM oidc_consents WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut **tx).await.map_err(store_err)?;
        }
        let done = sqlx::query("DELETE FROM oidc_clients WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "INSERT INTO oidc_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.public_jwk)
        .bind(&k.private_sealed)
        .bind(k.created_at.secs())
        .bind(opt_secs(k.retired_at))
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        sqlx::query(
            "SELECT kid, alg, public_jwk, private_sealed, created_at, retired_at FROM oidc_keys
             ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(key)
        .collect()
    }

    async fn retire_keys(&self, at: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("UPDATE oidc_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(at.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected())
    }

    async fn subject(&self, account: &AccountId, candidate: &str) -> Result<String, StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query("INSERT INTO oidc_subjects (account_id, sub) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING")
            .bind(account.as_str())
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        let row = sqlx::query("SELECT sub FROM oidc_subjects WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(store_err)?;
        text(&row, "sub")
    }

    async fn account_of_subject(&self, sub: &str) -> Result<Option<AccountId>, StoreError> {
        let row = sqlx::query("SELECT account_id FROM oidc_subjects WHERE sub = $1")
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| text(&r, "account_id").map(AccountId::from_stored)).transpose()
    }

    async fn consent(&self, account: &AccountId, client: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT scope FROM oidc_consents WHERE account_id = $1 AND client_id = $2")
            .bind(account.as_str())
            .bind(client)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        row.map(|r| text(&r, "scope")).transpose()
    }

    async fn save_consent(
        &self,
        account: &AccountId,
        client: &str,
        scope: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(
            "INSERT INTO oidc_consents (account_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(account.as_str())
        .bind(client)
        .bind(scope)
        .bind(at.secs())
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn insert_grant_with_code(&self, g: &GrantRecord, c: &CodeRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO oidc_grants ({GRANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(g.account_id.as_str())
        .bind(&g.scope)
        .bind(g.nonce.as_deref())
        .bind(g.auth_time.secs())
        .bind(&g.acr)
        .bind(&g.amr)
        .bind(&g.groups)
        .bind(g.created_at.secs())
        .bind(opt_secs(g.revoked_at))
        .bind(g.session_id.as_deref())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        sqlx::query(&format!("INSERT INTO oidc_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(&c.hash)
            .bind(&c.grant_id)
            .bind(&c.client_id)
            .bind(&c.redirect_uri)
            .bind(&c.code_challenge)
            .bind(c.expires_at.secs())
            .bind(opt_secs(c.consumed_at))
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn code(&self, hash: &str) -> Result<Option<CodeRecord>, StoreError> {
        sqlx::query(&format!("SELECT {CODE_COLS} FROM oidc_codes WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| code(&r))
            .transpose()
    }

    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        sqlx::query(&format!("SELECT {GRANT_COLS} FROM oidc_grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| grant(&r))
            .transpose()
    }

    async fn revoke_grant(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE oidc_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at.secs())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        sqlx::query("DELETE FROM oidc_tokens WHERE grant_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn issue_tokens(
        &self,
        grant_id: &str,
        spend: Spend<'_>,
        now: Timestamp,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let (sql, hash) = match spend {
            Spend::Code(h) => (
                "UPDATE oidc_codes SET consumed_at = $2 WHERE hash = $1 AND consumed_at IS NULL AND expires_at > $2",
                h,
            ),
            Spend::Refresh(h) => (
                "UPDATE oidc_tokens SET used_at = $2
                 WHERE hash = $1 AND kind = 'refresh' AND used_at IS NULL AND expires_at > $2",
                h,
            ),
        };
        let took = sqlx::query(sql).bind(hash).bind(now.secs()).execute(&mut **tx).await.map_err(store_err)?;
        if took.rows_affected() != 1 {
            return Ok(false);
        }
        // Touching the grant row first makes a concurrent revocation wait for
        // this transaction (or this one see it): no token outlives its grant.
        let live = sqlx::query(
            "UPDATE oidc_grants SET revoked_at = NULL WHERE id = $1 AND revoked_at IS NULL AND session_id IS NOT NULL",
        )
        .bind(grant_id)
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        if live.rows_affected() != 1 {
            return Ok(false);
        }
        for t in tokens {
            sqlx::query(&format!("INSERT INTO oidc_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                .bind(&t.hash)
                .bind(t.kind.as_str())
                .bind(&t.grant_id)
                .bind(&t.client_id)
                .bind(t.account_id.as_str())
                .bind(&t.scope)
                .bind(t.created_at.secs())
                .bind(t.expires_at.secs())
                .bind(opt_secs(t.used_at))
                .execute(&mut **tx)
                .await
                .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(true)
    }

    async fn live_token(&self, hash: &str, now: Timestamp) -> Result<Option<LiveToken>, StoreError> {
        let Some(t) = self.token(hash).await? else { return Ok(None) };
        if t.expires_at <= now {
            return Ok(None);
        }
        let Some(g) = self.grant(&t.grant_id).await? else { return Ok(None) };
        if !g.is_live() {
            return Ok(None);
        }
        Ok(Some(LiveToken { token: t, grant: g }))
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query(&format!("SELECT {TOKEN_COLS} FROM oidc_tokens WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .map(|r| token(&r))
            .transpose()
    }

    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let done = sqlx::query("DELETE FROM oidc_tokens WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn apps_of(&self, account: &AccountId, now: Timestamp) -> Result<Vec<(String, Timestamp)>, StoreError> {
        sqlx::query(
            "SELECT client_id, MIN(since) AS since FROM (
               SELECT client_id, granted_at AS since FROM oidc_consents WHERE account_id = $1
               UNION ALL
               SELECT client_id, created_at AS since FROM oidc_tokens
               WHERE account_id = $1 AND expires_at > $2 AND used_at IS NULL
             ) apps GROUP BY client_id ORDER BY since, client_id",
        )
        .bind(account.as_str())
        .bind(now.secs())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| Ok((text(r, "client_id")?, ts(r, "since")?)))
        .collect()
    }

    async fn forget_app(&self, account: &AccountId, client: &str, at: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM oidc_consents WHERE account_id = $1 AND client_id = $2")
            .bind(account.as_str())
            .bind(client)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        let revoked = sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $3 WHERE account_id = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(account.as_str())
        .bind(client)
        .bind(at.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        sqlx::query("DELETE FROM oidc_tokens WHERE account_id = $1 AND client_id = $2")
            .bind(account.as_str())
            .bind(client)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(revoked.rows_affected())
    }

    async fn sweep(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let mut n = 0;
        for sql in ["DELETE FROM oidc_codes WHERE expires_at < $1", "DELETE FROM oidc_tokens WHERE expires_at < $1"] {
            n += sqlx::query(sql).bind(before.secs()).execute(&self.pool).await.map_err(store_err)?.rows_affected();
        }
        Ok(n)
    }
}
