//! Who must have 2FA (stories P1, P2; SEC-47): members of an organisation
//! that requires it, and everyone once the operator's mandate is in force.
//!
//! An account the policy covers but that has no factor signs in to an
//! `enrollment` session, which reaches only its profile and factor set-up
//! until a factor is confirmed; it cannot turn 2FA off, nor remove its last
//! factor, while the policy holds.

pub mod access;
pub mod admin;
pub(crate) mod administration;
pub mod allowlist;
pub(crate) mod allowlists;
pub mod forward_auth;
pub(crate) mod forward_cache;
pub mod ip_range;
pub mod orgs;
pub mod store;

use crate::error::StoreError;
use crate::ids::AccountId;
use crate::service::Twostep;
use crate::time::Timestamp;

/// The operator's rule as it applies now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mandate {
    /// 2FA is optional.
    None,
    /// 2FA becomes mandatory at `from`: users without it are told so.
    Upcoming { from: Timestamp },
    /// 2FA is mandatory now.
    Enforced,
}

impl Twostep {
    /// The operator's mandate (`policy.require_two_factor`, `enforce_from`).
    pub fn operator_mandate(&self) -> Mandate {
        match (self.settings.require_two_factor, self.settings.two_factor_enforce_from) {
            (false, _) => Mandate::None,
            (true, Some(from)) if self.now() < from => Mandate::Upcoming { from },
            (true, _) => Mandate::Enforced,
        }
    }

    /// Whether the account must have 2FA now, by the operator's mandate or
    /// an organisation's rule. When the operator lets an IP allow-list stand
    /// in for 2FA, an account with a non-empty list meets the mandate (not
    /// an organisation's rule).
    pub async fn two_factor_required(&self, account: &AccountId) -> Result<bool, StoreError> {
        if self.operator_mandate() == Mandate::Enforced && !self.mandate_met_by_allowlist(account).await? {
            return Ok(true);
        }
        self.store.org_requires_two_factor(account).await
    }
}
