//! Security keys' credentials and ceremonies in flight.
//!
//! A ceremony is taken with `DELETE … RETURNING`: one statement, so exactly
//! one request gets it, on either engine and across instances (SEC-57).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use twostep_domain::error::StoreError;
use twostep_domain::factors::store::{AuthenticatorRecord, RecoveryCodeRecord};
use twostep_domain::factors::webauthn::store::{
    AddKeyOutcome, CeremonyPurpose, CeremonyRecord, WebauthnCredentialRecord, WebauthnStore,
};
use twostep_domain::ids::{AccountId, AuthenticatorId};
use twostep_domain::time::Timestamp;

use crate::accounts::{text, ts};
use crate::factors::{blob, count_authenticators, insert_authenticator, replace_codes_in};
use crate::{SqlStore, store_err};

const CEREMONY_COLUMNS: &str = "id, account_id, purpose, binding, kind, name, state, created_at, expires_at";
const CREDENTIAL_COLUMNS: &str =
    "authenticator_id, account_id, credential_id, kind, credential, sign_count, backup_eligible, backup_state";

fn purpose(s: &str) -> Result<CeremonyPurpose, StoreError> {
    match s {
        "register" => Ok(CeremonyPurpose::Register),
        "login" => Ok(CeremonyPurpose::Login),
        "reauth" => Ok(CeremonyPurpose::Reauth),
        "passkey" => Ok(CeremonyPurpose::Passkey),
        other => Err(StoreError::Backend(format!("unknown ceremony purpose {other:?}"))),
    }
}

fn ceremony(row: &AnyRow) -> Result<CeremonyRecord, StoreError> {
    Ok(CeremonyRecord {
        id: text(row, "id")?,
        account_id: row.try_get::<Option<String>, _>("account_id").map_err(store_err)?.map(AccountId::from_stored),
        purpose: purpose(&text(row, "purpose")?)?,
        binding: text(row, "binding")?,
        kind: text(row, "kind")?,
        name: text(row, "name")?,
        state: text(row, "state")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    row.try_get::<i64, _>(col).map_err(store_err)
}

fn credential(row: &AnyRow) -> Result<WebauthnCredentialRecord, StoreError> {
    Ok(WebauthnCredentialRecord {
        authenticator_id: AuthenticatorId::from_stored(text(row, "authenticator_id")?),
        account_id: AccountId::from_stored(text(row, "account_id")?),
        credential_id: blob(row, "credential_id")?,
        kind: text(row, "kind")?,
        credential: text(row, "credential")?,
        sign_count: int(row, "sign_count")?,
        backup_eligible: int(row, "backup_eligible")? != 0,
        backup_state: int(row, "backup_state")? != 0,
    })
}

#[async_trait]
impl WebauthnStore for SqlStore {
    async fn insert_ceremony(&self, c: &CeremonyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if !c.binding.is_empty() {
            sqlx::query("DELETE FROM webauthn_ceremonies WHERE purpose = $1 AND binding = $2")
                .bind(c.purpose.as_str())
                .bind(&c.binding)
                .execute(&mut **tx)
                .await
                .map_err(store_err)?;
        }
        sqlx::query(&format!(
            "INSERT INTO webauthn_ceremonies ({CEREMONY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&c.id)
        .bind(c.account_id.as_ref().map(AccountId::as_str))
        .bind(c.purpose.as_str())
        .bind(&c.binding)
        .bind(&c.kind)
        .bind(&c.name)
        .bind(&c.state)
        .bind(c.created_at.secs())
        .bind(c.expires_at.secs())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn take_registration(&self, id: &str, account: &AccountId) -> Result<Option<CeremonyRecord>, StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(&format!(
            "DELETE FROM webauthn_ceremonies WHERE id = $1 AND account_id = $2 AND purpose = $3
             RETURNING {CEREMONY_COLUMNS}"
        ))
        .bind(id)
        .bind(account.as_str())
        .bind(CeremonyPurpose::Register.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn take_passkey_ceremony(&self, id: &str) -> Result<Option<CeremonyRecord>, StoreError> {
        let _gate = self.pool_gate().await;
        sqlx::query(&format!(
            "DELETE FROM webauthn_ceremonies WHERE id = $1 AND purpose = $2 RETURNING {CEREMONY_COLUMNS}"
        ))
        .bind(id)
        .bind(CeremonyPurpose::Passkey.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn webauthn_credential(&self, credential_id: &[u8]) -> Result<Option<WebauthnCredentialRecord>, StoreError> {
        sqlx::query(&format!("SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE credential_id = $1"))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(credential)
            .transpose()
    }

    async fn take_bound_ceremony(
        &self,
        purpose: CeremonyPurpose,
        binding: &str,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let _gate = self.pool_gate().await;
        if binding.is_empty() {
            return Ok(None);
        }
        let rows = sqlx::query(&format!(
            "DELETE FROM webauthn_ceremonies WHERE purpose = $1 AND binding = $2 RETURNING {CEREMONY_COLUMNS}"
        ))
        .bind(purpose.as_str())
        .bind(binding)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        // `insert_ceremony` keeps one per binding; should a race leave two,
        // both are gone now and the newest is the one that counts.
        rows.iter().map(ceremony).collect::<Result<Vec<_>, _>>().map(|v| v.into_iter().max_by_key(|c| c.created_at))
    }

    async fn add_webauthn_credential(
        &self,
        a: &AuthenticatorRecord,
        c: &WebauthnCredentialRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<AddKeyOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let existing = count_authenticators(&mut tx, &a.account_id).await?;
        insert_authenticator(&mut tx, a).await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO webauthn_credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(c.authenticator_id.as_str())
        .bind(c.account_id.as_str())
        .bind(&c.credential_id)
        .bind(&c.kind)
        .bind(&c.credential)
        .bind(c.sign_count)
        .bind(i64::from(c.backup_eligible))
        .bind(i64::from(c.backup_state))
        .execute(&mut **tx)
        .await
        .map_err(store_err);
        match inserted {
            Err(StoreError::Conflict) => return Ok(AddKeyOutcome::Taken),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let first = existing == 0;
        if first {
            replace_codes_in(&mut tx, &a.account_id, codes).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(AddKeyOutcome::Added { first })
    }

    async fn webauthn_credentials(&self, account: &AccountId) -> Result<Vec<WebauthnCredentialRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE account_id = $1 ORDER BY authenticator_id"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(credential)
        .collect()
    }

    async fn record_webauthn_use(&self, c: &WebauthnCredentialRecord, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE webauthn_credentials SET credential = $1, sign_count = $2, backup_eligible = $3, backup_state = $4
             WHERE authenticator_id = $5",
        )
        .bind(&c.credential)
        .bind(c.sign_count)
        .bind(i64::from(c.backup_eligible))
        .bind(i64::from(c.backup_state))
        .bind(c.authenticator_id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        sqlx::query("UPDATE authenticators SET last_used_at = $1 WHERE id = $2")
            .bind(now.secs())
            .bind(c.authenticator_id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn purge_ceremonies(&self, before: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at < $1")
            .bind(before.secs())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected())
    }
}
