//! Password change and reset, as HTTP asks for them: the rules are in
//! `Accounts` (`accounts/service.rs`); a reset request is answered before
//! any lookup and worked on off the request path.

use std::sync::Arc;

use crate::audit::RequestContext;
use crate::error::{CredentialError, FactorError};
use crate::service::Twostep;
use crate::sessions::SignedIn;

impl Twostep {
    /// "Forgot password", answered before any lookup: the lookup, the link
    /// and the mail happen in a task of their own, so the answer takes the
    /// same time whether or not the address has an account (SEC-14). A
    /// failure there is logged; the caller was told the same either way.
    pub fn request_password_reset_in_background(self: &Arc<Self>, email: &str, ctx: &RequestContext) {
        let this = Arc::clone(self);
        let email = email.to_owned();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.reset_permits.acquire().await else { return };
            if let Err(e) = this.request_password_reset(&email, &ctx).await {
                tracing::error!(error = %e, request_id = ctx.request_id, "password reset request failed");
            }
        });
    }

    /// "Forgot password" done in line (see `Accounts::request_reset`).
    pub async fn request_password_reset(&self, email: &str, ctx: &RequestContext) -> Result<(), CredentialError> {
        self.accounts.request_reset(email, ctx).await
    }

    /// Whether a reset link is still good (the page checks before asking
    /// for a new password).
    pub async fn reset_link_live(&self, token: &str) -> bool {
        self.accounts.reset_link_live(token).await
    }

    /// Sets a new password from a reset link.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        self.accounts.reset_password(token, new_password, ctx).await
    }

    /// Changes the password of the signed-in account, after a fresh re-auth.
    pub async fn change_password(
        &self,
        me: &SignedIn,
        current: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), CredentialError> {
        self.require_recent_auth(me).await.map_err(|e| match e {
            FactorError::Internal(i) => CredentialError::Internal(i),
            _ => CredentialError::ReauthRequired,
        })?;
        self.accounts.change_password(me, current, new_password, ctx).await
    }
}
