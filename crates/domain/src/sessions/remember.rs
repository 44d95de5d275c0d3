//! "Remember this browser" (`security.md` §2.11): a separate 256-bit token
//! in its own cookie, stored as SHA-256, bound to one account, good for 30
//! days. It skips only the second factor at sign-in — never the password,
//! never re-auth — and dies when the account's 2FA or password changes.

use crate::accounts::store::RememberedBrowser;
use crate::audit::{AuditKind, RequestContext};
use crate::ids::AccountId;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::token::Token;

impl Twostep {
    /// Remembers the browser that just completed a second factor.
    pub async fn remember_browser(
        &self,
        account: &AccountId,
        ctx: &RequestContext,
    ) -> Result<Token, crate::error::StoreError> {
        let token = Token::generate(self.rng());
        let now = self.now();
        let mut id = [0u8; 9];
        self.rng().fill(&mut id);
        let record = RememberedBrowser {
            id: data_encoding::BASE64URL_NOPAD.encode(&id),
            token_hash: token.hash(),
            account_id: account.clone(),
            created_at: now,
            expires_at: now.plus_secs(self.settings.remember_browser_secs),
            last_used_at: None,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
        };
        self.store.insert_remembered(&record).await?;
        self.audit(
            AuditEvent::user(AuditKind::BrowserRemembered, account)
                .details(crate::abuse::device::describe(&ctx.user_agent)),
            ctx,
        )
        .await;
        Ok(token)
    }

    /// Whether `token` is a live remembered browser of `account`.
    pub(crate) async fn browser_remembered(
        &self,
        account: &AccountId,
        token: Option<&str>,
    ) -> Result<bool, crate::error::StoreError> {
        let Some(token) = token else { return Ok(false) };
        let now = self.now();
        match self.store.remembered(&Token::presented(token).hash()).await? {
            Some(b) if &b.account_id == account && now < b.expires_at => {
                self.store.touch_remembered(&b.id, now).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub async fn remembered_browsers(
        &self,
        account: &AccountId,
    ) -> Result<Vec<RememberedBrowser>, crate::error::StoreError> {
        let now = self.now();
        Ok(self.store.remembered_of(account).await?.into_iter().filter(|b| now < b.expires_at).collect())
    }

    /// Forgets one browser; true if it existed.
    pub async fn forget_browser(
        &self,
        me: &SignedIn,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, crate::error::StoreError> {
        let found = self.store.delete_remembered(&me.account.id, id).await?;
        if found {
            self.audit(AuditEvent::user(AuditKind::BrowserForgotten, &me.account.id).details(id.to_owned()), ctx).await;
        }
        Ok(found)
    }

    /// 2FA settings changed: every remembered browser must prove it again.
    pub(crate) async fn forget_all_browsers(&self, account: &AccountId) -> Result<(), crate::error::StoreError> {
        self.store.delete_remembered_of(account).await
    }
}
