//! `Notices`: security notices mailed to an account's own address (§2.7),
//! through the outbox. It holds only the accounts it reads the address
//! from, the outbox and the clock.

use std::sync::Arc;

use crate::accounts::store::AccountStore;
use crate::audit::RequestContext;
use crate::ids::AccountId;
use crate::notify::notice::{Notice, mail};
use crate::notify::outbox::Outbox;
use crate::ports::Clock;

/// Notices stay worth sending for a day; a mail server away longer than
/// that is an outage the operator sees in the log.
const NOTICE_LIFETIME_SECS: i64 = 24 * 60 * 60;

pub(crate) struct Notices {
    accounts: Arc<dyn AccountStore>,
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
}

impl Notices {
    pub fn new(accounts: Arc<dyn AccountStore>, outbox: Arc<Outbox>, clock: Arc<dyn Clock>) -> Self {
        Self { accounts, outbox, clock }
    }

    /// Mails a notice to the account's address. Never fails the caller:
    /// what went wrong is logged.
    pub async fn notify(&self, account: &AccountId, notice: Notice, ctx: &RequestContext) {
        let Ok(Some(a)) = self.accounts.account_by_id(account).await else { return };
        // A reset link goes to whoever holds the address; that is its point.
        if a.email_verified_at.is_none() && !matches!(notice, Notice::ResetLink { .. }) {
            tracing::info!(account = %account, notice = notice.subject(), "notice not sent: e-mail address not verified");
            return;
        }
        let now = self.clock.now();
        let context = format!("When: {}\nFrom address: {}\nClient: {}", now.rfc3339(), ctx.ip, ctx.user_agent);
        let mail = mail(a.email.as_str(), notice.subject(), &notice.body(), &context, None);
        if let Err(e) = self.outbox.enqueue(Some(account), &mail, now.plus_secs(NOTICE_LIFETIME_SECS)).await {
            tracing::error!(error = %e, notice = notice.subject(), "notice not queued");
        }
    }
}
