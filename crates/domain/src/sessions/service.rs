//! `Sessions`: the narrow service over `SessionStore` and the session
//! cache. It decides when a session is live (idle and absolute expiry,
//! §2.11), when a login token may still be used (§2.6), and makes every
//! change that ends or alters a session take effect on every instance.

use std::sync::Arc;

use crate::abuse::throttle::TokenTry;
use crate::audit::{AuditEntry, RequestContext};
use crate::error::{SessionError, StoreError};
use crate::factors::store::ProofWrites;
use crate::ids::AccountId;
use crate::policy::store::AllowlistRecord;
use crate::ports::{Clock, Rng};
use crate::sessions::SessionView;
use crate::sessions::cache::{SessionCache, SessionChange};
use crate::sessions::store::{
    Finished, LoginTokenRecord, SessionKind, SessionLookup, SessionRecord, SessionStore, SignedIn,
};
use crate::settings::Settings;
use crate::time::Timestamp;
use crate::token::{Token, TokenHash};

/// `last_seen_at` is written at most this often, so a busy client does not
/// turn every read into a write while the idle rule still holds to the minute.
const TOUCH_EVERY_SECS: i64 = 60;
/// How much of the stored hash names a session to its owner.
const PUBLIC_ID_LEN: usize = 16;

/// The session and login-token lifetimes the operator set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetimes {
    pub idle_secs: i64,
    pub absolute_secs: i64,
    pub login_token_secs: i64,
    pub login_token_max_failures: i64,
}

impl Lifetimes {
    pub fn of(settings: &Settings) -> Self {
        Self {
            idle_secs: settings.session_idle_secs,
            absolute_secs: settings.session_absolute_secs,
            login_token_secs: settings.login_token_secs,
            login_token_max_failures: settings.login_token_max_failures,
        }
    }
}

pub(crate) struct Sessions {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    lifetimes: Lifetimes,
    cache: Arc<SessionCache>,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        lifetimes: Lifetimes,
        cache: Arc<SessionCache>,
    ) -> Self {
        Self { store, clock, rng, lifetimes, cache }
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// A fresh session token and the row to store for it.
    pub fn issue(
        &self,
        account: &AccountId,
        kind: SessionKind,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
        ctx: &RequestContext,
    ) -> (Token, SessionRecord) {
        let token = Token::generate(self.rng.as_ref());
        let now = self.clock.now();
        let record = SessionRecord {
            id: token.hash(),
            account_id: account.clone(),
            kind,
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus_secs(self.lifetimes.absolute_secs),
            password_at,
            second_factor_at,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
        };
        (token, record)
    }

    /// Issues and stores a session.
    pub async fn start(
        &self,
        account: &AccountId,
        kind: SessionKind,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
        ctx: &RequestContext,
    ) -> Result<(Token, SessionRecord), StoreError> {
        let (token, record) = self.issue(account, kind, password_at, second_factor_at, ctx);
        self.store.insert_session(&record).await?;
        Ok((token, record))
    }

    /// The session behind a presented token, if it is live, with the
    /// account's IP allow-list (read in the same statement, and not at all
    /// while the session is in the cache).
    pub async fn authenticate(&self, token: &Token) -> Result<(SignedIn, Vec<AllowlistRecord>), SessionError> {
        let id = token.hash();
        let now = self.clock.now();
        // A kept entry is one read live less than `CACHE_SECS` ago, of an
        // enabled account, and never past the session's deadlines.
        if let Some(SessionLookup { mut session, account, allowlist }) = self.cache.get(&id) {
            if self.cache.claim_touch(&id, now, TOUCH_EVERY_SECS) {
                if let Err(e) = self.store.touch_session(&id, now).await {
                    self.cache.evict(&SessionChange::Session(id));
                    return Err(e.into());
                }
                session.last_seen_at = now;
            }
            return Ok((SignedIn { session, account }, allowlist));
        }
        let ticket = self.cache.ticket();
        let SessionLookup { mut session, account, allowlist } =
            self.store.session_lookup(&id).await?.ok_or(SessionError::Unauthenticated)?;
        if !self.live(&session, now) {
            self.store.delete_session(&id).await?;
            self.cache.evict(&SessionChange::Session(id));
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
            let live_until = session.expires_at.min(session.last_seen_at.plus_secs(self.lifetimes.idle_secs));
            let kept =
                SessionLookup { session: session.clone(), account: account.clone(), allowlist: allowlist.clone() };
            self.cache.put(ticket, kept, live_until);
        }
        Ok((SignedIn { session, account }, allowlist))
    }

    /// Before its absolute deadline and seen within the idle window.
    fn live(&self, s: &SessionRecord, now: Timestamp) -> bool {
        now < s.expires_at && now < s.last_seen_at.plus_secs(self.lifetimes.idle_secs)
    }

    /// After a change to sessions, an account or its allow-list has been
    /// written: forgets it here, then tells the other instances (and, on
    /// SQLite, the server when this is the command line). Call it after
    /// the write, never before: a read in between would keep the old row.
    /// An announcement that fails is logged; the others then hold the old
    /// row for at most `cache::CACHE_SECS`.
    pub async fn changed(&self, change: SessionChange) {
        self.cache.evict(&change);
        if let Err(e) = self.store.announce(&change).await {
            tracing::error!(error = %e, "could not announce a session change to the other instances");
        }
    }

    /// Ends one session.
    pub async fn end(&self, id: &TokenHash) -> Result<(), StoreError> {
        self.store.delete_session(id).await?;
        self.changed(SessionChange::Session(id.clone())).await;
        Ok(())
    }

    /// Gives a session a new id (re-auth, privilege change) so a token
    /// planted or observed before cannot ride along (§2.11).
    pub async fn rotate(&self, old: &TokenHash) -> Result<Token, SessionError> {
        let token = Token::generate(self.rng.as_ref());
        let rotated = self.store.rotate_session(old, &token.hash()).await?;
        self.changed(SessionChange::Session(old.clone())).await;
        if rotated { Ok(token) } else { Err(SessionError::Unauthenticated) }
    }

    /// Records proofs given in a session (re-auth, a factor confirmed).
    pub async fn record_proofs(
        &self,
        id: &TokenHash,
        password_at: Option<Timestamp>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.store.record_proofs(id, password_at, second_factor_at).await?;
        self.changed(SessionChange::Session(id.clone())).await;
        Ok(())
    }

    /// The account's live sessions, `current` first.
    pub async fn live_of(&self, account: &AccountId, current: &TokenHash) -> Result<Vec<SessionView>, StoreError> {
        let now = self.clock.now();
        let mut views: Vec<SessionView> = self
            .store
            .sessions_of(account)
            .await?
            .into_iter()
            .filter(|s| self.live(s, now))
            .map(|s| SessionView {
                id: s.id.as_str().chars().take(PUBLIC_ID_LEN).collect(),
                current: s.id == *current,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                device: crate::abuse::device::describe(&s.user_agent),
                ip: s.ip,
            })
            .collect();
        views.sort_by_key(|v| !v.current);
        Ok(views)
    }

    /// Ends the account's session named by `public_id` (as `live_of` shows
    /// it). False when it names none of the account's sessions.
    pub async fn end_named(&self, account: &AccountId, public_id: &str) -> Result<bool, StoreError> {
        if public_id.len() != PUBLIC_ID_LEN {
            return Ok(false);
        }
        let target = self.store.sessions_of(account).await?.into_iter().find(|s| s.id.as_str().starts_with(public_id));
        let Some(target) = target else { return Ok(false) };
        self.end(&target.id).await?;
        Ok(true)
    }

    /// Ends every session of the account but `keep`; how many ended.
    pub async fn end_all_of(&self, account: &AccountId, keep: Option<&TokenHash>) -> Result<u64, StoreError> {
        let n = self.store.delete_sessions_of(account, keep).await?;
        self.changed(SessionChange::Account(account.clone())).await;
        Ok(n)
    }

    /// Stores a login token for the second step (§2.6).
    pub async fn open_login(&self, account: &AccountId) -> Result<Token, StoreError> {
        let token = Token::generate(self.rng.as_ref());
        let now = self.clock.now();
        self.store
            .insert_login_token(&LoginTokenRecord {
                id: token.hash(),
                account_id: account.clone(),
                created_at: now,
                expires_at: now.plus_secs(self.lifetimes.login_token_secs),
                failures: 0,
            })
            .await?;
        Ok(token)
    }

    /// A login token that is live and not yet worn out by wrong codes.
    pub async fn usable_login(&self, id: &TokenHash) -> Result<Option<LoginTokenRecord>, StoreError> {
        let now = self.clock.now();
        let max = self.lifetimes.login_token_max_failures;
        Ok(self.store.login_token(id).await?.filter(|t| now < t.expires_at && t.failures < max))
    }

    /// A login token's try, for the second step to count with its
    /// throttles (`Throttles::admit_with`): §2.6's five wrong codes, however
    /// many arrive at once.
    pub fn login_try<'a>(&self, id: &'a TokenHash) -> TokenTry<'a> {
        TokenTry { id, max_failures: self.lifetimes.login_token_max_failures }
    }

    /// Turns a verified login token into a full session: exactly one request
    /// may (the proof's writes, the token consumed, the session stored and
    /// the sign-in time set in one transaction, with `audit`, what the
    /// sign-in records). `Err` with how it ended when another request won.
    pub async fn finish_login(
        &self,
        token: &LoginTokenRecord,
        proof: &ProofWrites,
        audit: &[AuditEntry],
        ctx: &RequestContext,
    ) -> Result<Result<(Token, SessionRecord), Finished>, StoreError> {
        let now = self.clock.now();
        let (session, record) =
            self.issue(&token.account_id, SessionKind::Full, Some(token.created_at), Some(now), ctx);
        Ok(match self.store.finish_sign_in(&token.id, now, &record, proof, audit).await? {
            Finished::SignedIn => Ok((session, record)),
            lost => Err(lost),
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
