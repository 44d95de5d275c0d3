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

/// Who requires two-factor authentication of an account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    /// The organisations whose rule requires it, by name.
    pub orgs: Vec<String>,
    /// The operator's mandate is in force for the account.
    pub operator: bool,
}

impl std::fmt::Display for Requirement {
    /// "Your organisation Acme requires two-factor authentication", "Your
    /// organisations Acme and Globex require…", "The operator of this
    /// service requires…".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.orgs.iter().map(|n| format!("\u{201c}{n}\u{201d}")).collect();
        let names = match quoted.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        };
        match (self.orgs.len(), self.operator) {
            (0, _) => f.write_str("The operator of this service requires two-factor authentication"),
            (1, false) => write!(f, "Your organisation {names} requires two-factor authentication"),
            (_, false) => write!(f, "Your organisations {names} require two-factor authentication"),
            (1, true) => write!(
                f,
                "Your organisation {names} and the operator of this service require two-factor authentication"
            ),
            (_, true) => write!(
                f,
                "Your organisations {names} and the operator of this service require two-factor authentication"
            ),
        }
    }
}

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

    /// Who requires 2FA of the account now, by name, so a refusal can say
    /// it ("Your organisation Acme requires…"); `None` when nobody does.
    pub async fn two_factor_requirement(&self, account: &AccountId) -> Result<Option<Requirement>, StoreError> {
        let operator = self.operator_mandate() == Mandate::Enforced && !self.mandate_met_by_allowlist(account).await?;
        let orgs: Vec<String> =
            self.store.orgs_requiring_two_factor(account).await?.into_iter().map(|o| o.name).collect();
        Ok((operator || !orgs.is_empty()).then_some(Requirement { orgs, operator }))
    }
}

#[cfg(test)]
mod tests {
    use super::Requirement;

    fn said(orgs: &[&str], operator: bool) -> String {
        Requirement { orgs: orgs.iter().map(|s| (*s).to_owned()).collect(), operator }.to_string()
    }

    #[test]
    fn a_requirement_names_who_makes_it() {
        assert_eq!(said(&["Acme"], false), "Your organisation \u{201c}Acme\u{201d} requires two-factor authentication");
        assert_eq!(
            said(&["Acme", "Globex", "Initech"], false),
            "Your organisations \u{201c}Acme\u{201d}, \u{201c}Globex\u{201d} and \u{201c}Initech\u{201d} require two-factor authentication"
        );
        assert_eq!(said(&[], true), "The operator of this service requires two-factor authentication");
        assert!(said(&["Acme"], true).ends_with("and the operator of this service require two-factor authentication"));
    }
}
