//! Sessions: creation, lookup with idle and absolute expiry (§2.11), logout.
//!
//! A session is found by the SHA-256 of its token. `last_seen_at` is written
//! at most once a minute, so a busy client does not turn every read into a
//! write while the 30-minute idle rule still holds to the minute. A session
//! read is kept in memory for a few seconds (`cache`); every change that
//! ends or alters a session goes through `sessions_changed`, which evicts it
//! here and on every other instance.

pub mod cache;
pub mod remember;
pub(crate) mod service;
pub mod store;

pub use store::SignedIn;

use crate::audit::{AuditKind, RequestContext};
use crate::error::SessionError;
use crate::policy::store::AllowlistRecord;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::cache::SessionChange;
use crate::time::Timestamp;
use crate::token::{Token, TokenHash};

/// A session as its owner sees it in "Signed-in devices".
#[derive(Clone, Debug)]
pub struct SessionView {
    /// A prefix of the stored hash: enough to name it, useless to sign in.
    pub id: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ip: String,
    pub device: String,
    pub current: bool,
}

impl Twostep {
    /// The session behind a presented token, if it is live.
    pub async fn authenticate(&self, token: &Token) -> Result<SignedIn, SessionError> {
        Ok(self.sessions.authenticate(token).await?.0)
    }

    /// `authenticate`, with the account's IP allow-list read in the same
    /// statement as the session and the account.
    pub(crate) async fn authenticate_with_allowlist(
        &self,
        token: &Token,
    ) -> Result<(SignedIn, Vec<AllowlistRecord>), SessionError> {
        self.sessions.authenticate(token).await
    }

    /// See `Sessions::changed`.
    pub(crate) async fn sessions_changed(&self, change: SessionChange) {
        self.sessions.changed(change).await;
    }

    pub async fn sign_out(&self, signed_in: &SignedIn, ctx: &RequestContext) -> Result<(), SessionError> {
        self.sessions.end(&signed_in.session.id).await?;
        self.audit(AuditEvent::user(AuditKind::SignOut, &signed_in.account.id), ctx).await;
        Ok(())
    }

    /// Gives a cookie session a new id (re-auth, privilege change) so a
    /// token planted or observed before cannot ride along (§2.11).
    pub async fn rotate_session(&self, old: &TokenHash) -> Result<Token, SessionError> {
        self.sessions.rotate(old).await
    }

    /// The account's live sessions, this one first.
    pub async fn sessions_of(&self, me: &SignedIn) -> Result<Vec<SessionView>, SessionError> {
        Ok(self.sessions.live_of(&me.account.id, &me.session.id).await?)
    }

    /// Signs one of the account's sessions out (re-auth needed). True if found.
    pub async fn revoke_session(
        &self,
        me: &SignedIn,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, crate::error::FactorError> {
        self.require_recent_auth(me).await?;
        if !self.sessions.end_named(&me.account.id, id).await? {
            return Ok(false);
        }
        self.audit(AuditEvent::user(AuditKind::SessionRevoked, &me.account.id).details(format!("session {id}")), ctx)
            .await;
        Ok(true)
    }

    /// "Sign out everywhere else" (re-auth needed).
    pub async fn revoke_other_sessions(
        &self,
        me: &SignedIn,
        ctx: &RequestContext,
    ) -> Result<u64, crate::error::FactorError> {
        self.require_recent_auth(me).await?;
        let n = self.sessions.end_all_of(&me.account.id, Some(&me.session.id)).await?;
        crate::policy::forward_cache::forget_account(&me.account.id);
        self.audit(
            AuditEvent::user(AuditKind::SessionRevoked, &me.account.id).details(format!("{n} other sessions")),
            ctx,
        )
        .await;
        Ok(n)
    }

    /// The account's own security log, newest first, raw, each entry with
    /// the device it came from (`readable::device_of`): `before` is a row id
    /// (`AuditEntry::id`) to page from.
    pub async fn security_log(
        &self,
        me: &SignedIn,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<(crate::audit::AuditEntry, String)>, SessionError> {
        let filter = crate::audit::AuditFilter {
            account_id: Some(me.account.id.clone()),
            limit,
            before_id: before,
            ..Default::default()
        };
        let names = self.factor_names(&me.account.id).await?;
        let entries = self.auditor.entries(&filter).await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let device = crate::audit::readable::device_of(&e, &names);
                (e, device)
            })
            .collect())
    }

    /// The account's second factors by id, for the log to name them.
    async fn factor_names(
        &self,
        account: &crate::ids::AccountId,
    ) -> Result<crate::audit::readable::FactorNames, crate::error::StoreError> {
        let mut names = crate::audit::readable::FactorNames::default();
        for a in self.store.authenticators(account).await? {
            names.insert(a.id.to_string(), a.name);
        }
        Ok(names)
    }

    /// The account's security log as people read it (issue 20): grouped,
    /// worded, filtered and paged, companion devices and apps by name.
    pub async fn readable_security_log(
        &self,
        me: &SignedIn,
        q: crate::audit::LogQuery,
    ) -> Result<crate::audit::LogPage, SessionError> {
        let names = self.factor_names(&me.account.id).await?;
        Ok(self.auditor.readable_page(&me.account.id, q, &names).await?)
    }
}
