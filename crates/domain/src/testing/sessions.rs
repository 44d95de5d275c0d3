//! An in-memory `SessionStore`: sessions, login tokens, and the accounts and
//! allow-lists a session lookup joins.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::accounts::store::AccountRecord;
use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::factors::store::ProofWrites;
use crate::ids::AccountId;
use crate::policy::store::AllowlistRecord;
use crate::sessions::cache::SessionChange;
use crate::sessions::store::{Finished, LoginTokenRecord, SessionKind, SessionLookup, SessionRecord, SessionStore};
use crate::testing::audit::MemAudit;
use crate::time::Timestamp;
use crate::token::TokenHash;

#[derive(Default)]
pub struct MemSessions {
    pub accounts: Mutex<HashMap<String, AccountRecord>>,
    pub allowlists: Mutex<HashMap<String, Vec<AllowlistRecord>>>,
    pub sessions: Mutex<HashMap<String, SessionRecord>>,
    pub login_tokens: Mutex<HashMap<String, LoginTokenRecord>>,
    /// Every change announced to other instances, in order.
    pub announced: Mutex<Vec<SessionChange>>,
    /// How many times a session was read from the store (not the cache).
    pub lookups: Mutex<usize>,
    /// How many times `last_seen_at` was written.
    pub touches: Mutex<usize>,
    /// Where a finished sign-in's audit rows go (the same transaction in
    /// the real store); dropped when unset.
    pub audit: Mutex<Option<std::sync::Arc<MemAudit>>>,
    /// The replay guard a finished sign-in writes first: each
    /// authenticator's highest spent step.
    pub spent_steps: Mutex<HashMap<String, i64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemSessions {
    pub fn with_account(account: AccountRecord) -> Self {
        let me = Self::default();
        lock(&me.accounts).insert(account.id.as_str().to_owned(), account);
        me
    }

    /// Counts one try of a live login token below `max_failures`: its
    /// tries after this one (`None`: expired, spent or worn out).
    pub fn try_login(&self, id: &TokenHash, now: Timestamp, max_failures: i64) -> Option<i64> {
        let mut tokens = lock(&self.login_tokens);
        let t = tokens.get_mut(id.as_str()).filter(|t| now < t.expires_at && t.failures < max_failures)?;
        t.failures += 1;
        Some(t.failures)
    }

    pub fn session(&self, id: &TokenHash) -> Option<SessionRecord> {
        lock(&self.sessions).get(id.as_str()).cloned()
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn announced(&self) -> Vec<SessionChange> {
        lock(&self.announced).clone()
    }

    pub fn lookups(&self) -> usize {
        *lock(&self.lookups)
    }

    pub fn touches(&self) -> usize {
        *lock(&self.touches)
    }

    pub fn disable(&self, account: &AccountId, at: Timestamp) {
        if let Some(a) = lock(&self.accounts).get_mut(account.as_str()) {
            a.disabled_at = Some(at);
        }
    }

    pub fn login_token_record(&self, id: &TokenHash) -> Option<LoginTokenRecord> {
        lock(&self.login_tokens).get(id.as_str()).cloned()
    }
}

#[async_trait]
impl SessionStore for MemSessions {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        lock(&self.sessions).insert(session.id.as_str().to_owned(), session.clone());
        Ok(())
    }

    async fn session_lookup(&self, id: &TokenHash) -> Result<Option<SessionLookup>, StoreError> {
        *lock(&self.lookups) += 1;
        let Some(session) = lock(&self.sessions).get(id.as_str()).cloned() else { return Ok(None) };
        let Some(account) = lock(&self.accounts).get(session.account_id.as_str()).cloned() else { return Ok(None) };
        let allowlist = lock(&self.allowlists).get(account.id.as_str()).cloned().unwrap_or_default();
        Ok(Some(SessionLookup { session, account, allowlist }))
    }

    async fn touch_session(&self, id: &TokenHash, at: Timestamp) -> Result<(), StoreError> {
        *lock(&self.touches) += 1;
        if let Some(s) = lock(&self.sessions).get_mut(id.as_str()) {
            s.last_seen_at = at;
        }
        Ok(())
    }

    async fn record_proofs(
        &self,
        id: &TokenHash,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        if let Some(s) = lock(&self.sessions).get_mut(id.as_str()) {
            s.password_at = password_at.or(s.password_at);
            s.second_factor_at = second_factor_at.or(s.second_factor_at);
        }
        Ok(())
    }

    async fn set_session_kind(&self, id: &TokenHash, kind: SessionKind) -> Result<(), StoreError> {
        if let Some(s) = lock(&self.sessions).get_mut(id.as_str()) {
            s.kind = kind;
        }
        Ok(())
    }

    async fn rotate_session(&self, old: &TokenHash, new: &TokenHash) -> Result<bool, StoreError> {
        let mut sessions = lock(&self.sessions);
        let Some(mut s) = sessions.remove(old.as_str()) else { return Ok(false) };
        s.id = new.clone();
        sessions.insert(new.as_str().to_owned(), s);
        Ok(true)
    }

    async fn delete_session(&self, id: &TokenHash) -> Result<(), StoreError> {
        lock(&self.sessions).remove(id.as_str());
        Ok(())
    }

    async fn delete_sessions_of(&self, account: &AccountId, keep: Option<&TokenHash>) -> Result<u64, StoreError> {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| s.account_id != *account || keep.is_some_and(|k| *k == s.id));
        Ok(u64::try_from(before - sessions.len()).unwrap_or(0))
    }

    async fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError> {
        let mut found: Vec<SessionRecord> =
            lock(&self.sessions).values().filter(|s| s.account_id == *account).cloned().collect();
        found.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
        Ok(found)
    }

    async fn announce(&self, change: &SessionChange) -> Result<(), StoreError> {
        lock(&self.announced).push(change.clone());
        Ok(())
    }

    async fn insert_login_token(&self, token: &LoginTokenRecord) -> Result<(), StoreError> {
        lock(&self.login_tokens).insert(token.id.as_str().to_owned(), token.clone());
        Ok(())
    }

    async fn login_token(&self, id: &TokenHash) -> Result<Option<LoginTokenRecord>, StoreError> {
        Ok(lock(&self.login_tokens).get(id.as_str()).cloned())
    }

    async fn finish_sign_in(
        &self,
        login_token: &TokenHash,
        now: Timestamp,
        session: &SessionRecord,
        proof: &ProofWrites,
        audit: &[AuditEntry],
    ) -> Result<Finished, StoreError> {
        let mut steps = lock(&self.spent_steps);
        if let Some(spend) = &proof.step
            && steps.get(spend.authenticator.as_str()).is_some_and(|spent| *spent >= spend.step)
        {
            return Ok(Finished::ProofSpent);
        }
        let mut tokens = lock(&self.login_tokens);
        match tokens.get(login_token.as_str()) {
            Some(t) if now < t.expires_at => {
                tokens.remove(login_token.as_str());
            }
            _ => return Ok(Finished::TokenGone),
        }
        if let Some(spend) = &proof.step {
            steps.insert(spend.authenticator.as_str().to_owned(), spend.step);
        }
        lock(&self.sessions).insert(session.id.as_str().to_owned(), session.clone());
        if let Some(a) = lock(&self.accounts).get_mut(session.account_id.as_str()) {
            a.last_sign_in_at = Some(session.created_at);
        }
        if let Some(log) = lock(&self.audit).as_ref() {
            for e in proof.audit.iter().chain(audit) {
                log.push(e);
            }
        }
        Ok(Finished::SignedIn)
    }
}

/// The accounts a sign-in reads and writes (the same rows a session lookup
/// joins).
#[async_trait]
impl crate::accounts::store::AccountStore for MemSessions {
    async fn insert_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let mut accounts = lock(&self.accounts);
        if accounts.values().any(|a| a.email == account.email) {
            return Err(StoreError::Conflict);
        }
        accounts.insert(account.id.as_str().to_owned(), account.clone());
        Ok(())
    }

    async fn account_by_email(
        &self,
        email: &crate::accounts::email::Email,
    ) -> Result<Option<AccountRecord>, StoreError> {
        Ok(lock(&self.accounts).values().find(|a| a.email == *email).cloned())
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(lock(&self.accounts).get(id.as_str()).cloned())
    }

    async fn list_accounts(&self, limit: i64) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(lock(&self.accounts).values().take(usize::try_from(limit).unwrap_or(0)).cloned().collect())
    }

    async fn set_disabled(&self, id: &AccountId, at: Option<Timestamp>) -> Result<bool, StoreError> {
        Ok(lock(&self.accounts).get_mut(id.as_str()).map(|a| a.disabled_at = at).is_some())
    }

    async fn record_sign_in(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError> {
        if let Some(a) = lock(&self.accounts).get_mut(id.as_str()) {
            a.last_sign_in_at = Some(at);
        }
        Ok(())
    }

    async fn set_password_hash(&self, id: &AccountId, hash: &str) -> Result<(), StoreError> {
        if let Some(a) = lock(&self.accounts).get_mut(id.as_str()) {
            hash.clone_into(&mut a.password_hash);
        }
        Ok(())
    }

    async fn set_email_verified(&self, id: &AccountId, at: Timestamp) -> Result<(), StoreError> {
        if let Some(a) = lock(&self.accounts).get_mut(id.as_str()) {
            a.email_verified_at = Some(at);
        }
        Ok(())
    }
}
