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
pub mod store;

pub use store::SignedIn;

use crate::audit::{AuditKind, RequestContext};
use crate::error::SessionError;
use crate::ids::AccountId;
use crate::policy::store::AllowlistRecord;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::cache::SessionChange;
use crate::sessions::store::{SessionKind, SessionLookup, SessionRecord};
use crate::time::Timestamp;
use crate::token::{Token, TokenHash};

const TOUCH_EVERY_SECS: i64 = 60;

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

const PUBLIC_ID_LEN: usize = 16;

impl Twostep {
    /// Starts a session with the proofs given at sign-in.
    pub(crate) async fn start_session(
        &self,
        account: &AccountId,
        kind: SessionKind,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
        ctx: &RequestContext,
    ) -> Result<Token, SessionError> {
        let (token, record) = self.new_session(account, kind, password_at, second_factor_at, ctx);
        self.store.insert_session(&record).await?;
        self.store.record_sign_in(account, record.created_at).await?;
        Ok(token)
    }

    /// A fresh session token and the row to store for it.
    pub(crate) fn new_session(
        &self,
        account: &AccountId,
        kind: SessionKind,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
        ctx: &RequestContext,
    ) -> (Token, SessionRecord) {
        let token = Token::generate(self.rng());
        let now = self.now();
        let record = SessionRecord {
            id: token.hash(),
            account_id: account.clone(),
            kind,
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus_secs(self.settings.session_absolute_secs),
            password_at,
            second_factor_at,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
        };
        (token, record)
    }

    /// The session behind a presented token, if it is live.
    pub async fn authenticate(&self, token: &Token) -> Result<SignedIn, SessionError> {
        Ok(self.authenticate_with_allowlist(token).await?.0)
    }

    /// `authenticate`, with the account's IP allow-list read in the same
    /// statement as the session and the account (one read per request, and
    /// none while the session is in the cache).
    pub(crate) async fn authenticate_with_allowlist(
        &self,
        token: &Token,
    ) -> Result<(SignedIn, Vec<AllowlistRecord>), SessionError> {
        let id = token.hash();
        let now = self.now();
        // A kept entry is one read live less than `CACHE_SECS` ago, of an
        // enabled account, and never past the session's deadlines.
        if let Some(SessionLookup { mut session, account, allowlist }) = self.session_cache.get(&id) {
            if self.session_cache.claim_touch(&id, now, TOUCH_EVERY_SECS) {
                if let Err(e) = self.store.touch_session(&id, now).await {
                    self.session_cache.evict(&SessionChange::Session(id));
                    return Err(e.into());
                }
                session.last_seen_at = now;
            }
            return Ok((SignedIn { session, account }, allowlist));
        }
        let ticket = self.session_cache.ticket();
        let SessionLookup { mut session, account, allowlist } =
            self.store.session_lookup(&id).await?.ok_or(SessionError::Unauthenticated)?;
        let idle_until = session.last_seen_at.plus_secs(self.settings.session_idle_secs);
        if now >= session.expires_at || now >= idle_until {
            self.store.delete_session(&id).await?;
            self.session_cache.evict(&SessionChange::Session(id));
            return Err(SessionError::Unauthenticated);
        }
        if account.disabled_at.is_some() {
            return Err(SessionError::Unauthenticated);
        }
        if now.secs() - session.last_seen_at.secs() >= TOUCH_EVERY_SECS {
            self.store.touch_session(&id, now).await?;
            session.last_seen_at = now;
        }
        if let Some(ticket) = ticket {
            let live_until = session.expires_at.min(session.last_seen_at.plus_secs(self.settings.session_idle_secs));
            let kept =
                SessionLookup { session: session.clone(), account: account.clone(), allowlist: allowlist.clone() };
            self.session_cache.put(ticket, kept, live_until);
        }
        Ok((SignedIn { session, account }, allowlist))
    }

    /// After a change to sessions, an account or its allow-list has been
    /// written: forgets it here, then tells the other instances (and, on
    /// SQLite, the server when this is the command line). Call it after
    /// the write, never before: a read in between would keep the old row.
    /// An announcement that fails is logged; the others then hold the old
    /// row for at most `cache::CACHE_SECS`.
    pub(crate) async fn sessions_changed(&self, change: SessionChange) {
        self.session_cache.evict(&change);
        if let Err(e) = self.store.announce(&change).await {
            tracing::error!(error = %e, "could not announce a session change to the other instances");
        }
    }

    pub async fn sign_out(&self, signed_in: &SignedIn, ctx: &RequestContext) -> Result<(), SessionError> {
        self.store.delete_session(&signed_in.session.id).await?;
        self.sessions_changed(SessionChange::Session(signed_in.session.id.clone())).await;
        self.audit(AuditEvent::user(AuditKind::SignOut, &signed_in.account.id), ctx).await;
        Ok(())
    }

    /// Gives a cookie session a new id (re-auth, privilege change) so a
    /// token planted or observed before cannot ride along (§2.11).
    pub async fn rotate_session(&self, old: &TokenHash) -> Result<Token, SessionError> {
        let token = Token::generate(self.rng());
        let rotated = self.store.rotate_session(old, &token.hash()).await?;
        self.sessions_changed(SessionChange::Session(old.clone())).await;
        if rotated { Ok(token) } else { Err(SessionError::Unauthenticated) }
    }

    /// The account's live sessions, this one first.
    pub async fn sessions_of(&self, me: &SignedIn) -> Result<Vec<SessionView>, SessionError> {
        let now = self.now();
        let mut views: Vec<SessionView> = self
            .store
            .sessions_of(&me.account.id)
            .await?
            .into_iter()
            .filter(|s| now < s.expires_at && now < s.last_seen_at.plus_secs(self.settings.session_idle_secs))
            .map(|s| SessionView {
                id: s.id.as_str().chars().take(PUBLIC_ID_LEN).collect(),
                current: s.id == me.session.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                device: crate::abuse::device::describe(&s.user_agent),
                ip: s.ip,
            })
            .collect();
        views.sort_by_key(|v| !v.current);
        Ok(views)
    }

    /// Signs one of the account's sessions out (re-auth needed). True if found.
    pub async fn revoke_session(
        &self,
        me: &SignedIn,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, crate::error::FactorError> {
        self.require_recent_auth(me).await?;
        let target = self
            .store
            .sessions_of(&me.account.id)
            .await?
            .into_iter()
            .find(|s| id.len() == PUBLIC_ID_LEN && s.id.as_str().starts_with(id));
        let Some(target) = target else { return Ok(false) };
        self.store.delete_session(&target.id).await?;
        self.sessions_changed(SessionChange::Session(target.id.clone())).await;
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
        let n = self.store.delete_sessions_of(&me.account.id, Some(&me.session.id)).await?;
        self.sessions_changed(SessionChange::Account(me.account.id.clone())).await;
        crate::policy::forward_cache::forget_account(&me.account.id);
        self.audit(
            AuditEvent::user(AuditKind::SessionRevoked, &me.account.id).details(format!("{n} other sessions")),
            ctx,
        )
        .await;
        Ok(n)
    }

    /// The account's own security log, newest first.
    pub async fn security_log(&self, me: &SignedIn, limit: i64) -> Result<Vec<crate::audit::AuditEntry>, SessionError> {
        let filter = crate::audit::AuditFilter { account_id: Some(me.account.id.clone()), limit, ..Default::default() };
        Ok(self.store.entries(&filter).await?)
    }
}
