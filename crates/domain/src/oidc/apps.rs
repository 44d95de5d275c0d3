//! "Apps with access": what a person let sign them in, and taking it back.

use super::store::ClientRecord;
use super::{Oidc, OidcError};
use crate::audit::{AuditKind, RequestContext};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::store::SignedIn;
use crate::time::Timestamp;

impl Oidc {
    /// The apps the account consented to or that hold its live tokens.
    pub async fn apps_of(&self, me: &SignedIn) -> Result<Vec<(ClientRecord, Timestamp)>, OidcError> {
        let mut out = Vec::new();
        for (id, since) in self.store.apps_of(&me.account.id, self.clock.now()).await? {
            if let Some(c) = self.store.client(&id).await? {
                out.push((c, since));
            }
        }
        Ok(out)
    }

    /// Forgets the consent and revokes every token the app holds for the
    /// account: its refresh tokens stop working at once.
    pub async fn revoke_app(
        &self,
        twostep: &Twostep,
        me: &SignedIn,
        client: &str,
        ctx: &RequestContext,
    ) -> Result<(), OidcError> {
        let revoked = self.store.forget_app(&me.account.id, client, self.clock.now()).await?;
        let client: String = client.chars().take(128).collect();
        let details = format!("client {client}; revoked by the account holder ({revoked} grants)");
        twostep.audit(AuditEvent::user(AuditKind::OidcGrantRevoked, &me.account.id).details(details), ctx).await;
        Ok(())
    }
}
