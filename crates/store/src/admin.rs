//! The operator role and the admin's user list.

use async_trait::async_trait;
use sqlx::Row;
use twostep_domain::error::StoreError;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::store::{AccountQuery, AccountSummary, AdminStore};
use twostep_domain::time::Timestamp;

use crate::accounts::{COLUMNS, account, opt_secs};
use crate::{SqlStore, store_err};

/// `LIKE` pattern for "contains `text`", with the wildcards in it escaped.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn set_admin(&self, id: &AccountId, since: Option<Timestamp>) -> Result<bool, StoreError> {
        let _gate = self.pool_gate().await;
        let r = sqlx::query("UPDATE accounts SET admin_since = $1 WHERE id = $2")
            .bind(opt_secs(since))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn search_accounts(&self, q: &AccountQuery) -> Result<Vec<AccountSummary>, StoreError> {
        let text = q.text.as_deref().map(str::trim).unwrap_or_default();
        let two_factor = match q.two_factor {
            None => "",
            Some(true) => "on",
            Some(false) => "off",
        };
        // The page of accounts first, then its factors joined on: one query,
        // and the limit counts accounts, not factor rows.
        let sql = format!(
            "SELECT a.*, f.kind AS factor_kind
             FROM (SELECT {COLUMNS} FROM accounts
                   WHERE ($1 = '' OR LOWER(email) LIKE $2 ESCAPE '\\' OR id = $1)
                     AND ($3 = ''
                          OR ($3 = 'on' AND EXISTS (SELECT 1 FROM authenticators x WHERE x.account_id = accounts.id))
                          OR ($3 = 'off' AND NOT EXISTS
                                (SELECT 1 FROM authenticators x WHERE x.account_id = accounts.id)))
                   ORDER BY email LIMIT $4) a
             LEFT JOIN authenticators f ON f.account_id = a.id
             ORDER BY a.email, f.kind"
        );
        let rows = sqlx::query(&sql)
            .bind(text)
            .bind(contains_pattern(text))
            .bind(two_factor)
            .bind(q.limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let mut out: Vec<AccountSummary> = Vec::new();
        for r in &rows {
            let kind = r.try_get::<Option<String>, _>("factor_kind").map_err(store_err)?;
            let id: String = r.try_get("id").map_err(store_err)?;
            if out.last().is_none_or(|last| last.account.id.as_str() != id) {
                out.push(AccountSummary { account: account(r)?, factor_kinds: Vec::new() });
            }
            if let (Some(k), Some(last)) = (kind, out.last_mut())
                && !last.factor_kinds.contains(&k)
            {
                last.factor_kinds.push(k);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn wildcards_in_the_search_text_match_literally() {
        assert_eq!(contains_pattern("Ann_B%"), "%ann\\_b\\%%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
