//! Everything the services need from storage, bundled for wiring: each
//! area declares its own narrow trait next to the service that uses it.

use async_trait::async_trait;

use crate::error::StoreError;

use crate::abuse::store::ThrottleStore;
use crate::accounts::store::{AccountStore, CredentialStore};
use crate::audit::AuditLog;
use crate::factors::push::store::PushStore;
use crate::factors::sent_code::store::CodeStore;
use crate::factors::store::FactorStore;
use crate::factors::webauthn::store::WebauthnStore;
use crate::notify::store::OutboxStore;
use crate::policy::store::{AdminStore, AllowlistStore, OrgStore};
use crate::sessions::store::SessionStore;

#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the services need from storage.
pub trait Store:
    AccountStore
    + SessionStore
    + FactorStore
    + ThrottleStore
    + CredentialStore
    + AuditLog
    + OutboxStore
    + CodeStore
    + OrgStore
    + AdminStore
    + AllowlistStore
    + PushStore
    + WebauthnStore
    + Health
{
}

impl<T> Store for T where
    T: AccountStore
        + SessionStore
        + FactorStore
        + ThrottleStore
        + CredentialStore
        + AuditLog
        + OutboxStore
        + CodeStore
        + OrgStore
        + AdminStore
        + AllowlistStore
        + PushStore
        + WebauthnStore
        + Health
{
}
