//! The factors this server knows, in one place: adding a factor adds its
//! unit here, its methods to `METHODS` and its audit kinds to `AUDIT_KINDS`.

use super::email::EmailFactor;
use super::phone::PhoneFactor;
use super::push::PushFactor;
use super::recovery::RecoveryFactor;
use super::totp::TotpFactor;
use super::webauthn::WebauthnFactor;
use super::{Factor, Method};
use crate::abuse::throttle::Scope;
use crate::audit::AuditKind;
use crate::ids::AccountId;

/// Every method, strongest first: what `Method::parse` knows.
pub static METHODS: &[Method] = &[
    super::webauthn::WEBAUTHN,
    super::push::PUSH,
    super::totp::TOTP,
    super::phone::SMS,
    super::phone::VOICE,
    super::email::EMAIL,
    super::recovery::RECOVERY_CODE,
];

/// The factors' own audit kinds: with the general ones, what
/// `AuditKind::parse` knows. A factor's kinds are defined in its module.
pub static AUDIT_KINDS: &[AuditKind] = &[
    AuditKind::TotpEnrollmentStarted,
    AuditKind::TotpReplay,
    AuditKind::WebauthnSignCountRegression,
    AuditKind::RecoveryCodeUsed,
    AuditKind::RecoveryCodesRevealed,
    AuditKind::RecoveryCodesRegenerated,
    AuditKind::CodeSent,
    AuditKind::CodeSendThrottled,
    AuditKind::PhoneVerificationStarted,
    AuditKind::PhoneAdded,
    AuditKind::PhoneRemoved,
    AuditKind::PushPairingStarted,
    AuditKind::PushDeviceAdded,
    AuditKind::PushDeviceRenamed,
    AuditKind::PushSent,
    AuditKind::PushApproved,
    AuditKind::PushDenied,
];

/// The server's factors, built once on first use. A static rather than a
/// field of `Twostep`, so the facade need not know the factors that use it.
pub(crate) fn standard() -> &'static Registry {
    static STANDARD: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::standard);
    &STANDARD
}

/// The factors.
pub(crate) struct Registry {
    factors: Vec<Box<dyn Factor>>,
}

impl Registry {
    pub fn standard() -> Self {
        Self {
            factors: vec![
                Box::new(WebauthnFactor),
                Box::new(TotpFactor),
                Box::new(PushFactor),
                Box::new(PhoneFactor),
                Box::new(EmailFactor),
                Box::new(RecoveryFactor),
            ],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Factor> {
        self.factors.iter().map(AsRef::as_ref)
    }

    /// The factor that offers `method`.
    pub fn factor(&self, method: Method) -> Option<&dyn Factor> {
        self.iter().find(|f| f.methods().contains(&method))
    }

    /// Every counter the factors count tries in, once each: what an
    /// admin's reset clears.
    pub fn counters(&self, account: &AccountId) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = Vec::new();
        for scope in self.iter().flat_map(|f| f.scopes(account)) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// The counters that can lock a method, once each: what the factor
    /// summary reads so the methods list can leave locked ones out.
    pub fn lock_scopes(&self, account: &AccountId) -> Vec<Scope> {
        self.counters(account).into_iter().filter(Scope::lockable).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::factors::Proving;

    #[test]
    fn every_method_has_one_factor_and_parses_by_its_name() {
        let registry = Registry::standard();
        for m in METHODS {
            assert_eq!(registry.iter().filter(|f| f.methods().contains(m)).count(), 1, "{m:?}");
            assert_eq!(Method::parse(m.as_str()), Some(*m));
        }
        assert_eq!(registry.iter().map(|f| f.methods().len()).sum::<usize>(), METHODS.len());
        assert_eq!(Method::parse("bogus"), None);
        let strongest_typed = METHODS.iter().find(|m| m.info().proving == Proving::Typed).copied();
        assert_eq!(Some(Method::STRONGEST), strongest_typed);
        assert!(registry.factor(Method::UNLOCKING).is_some_and(Factor::unlocks_others));
    }

    #[test]
    fn methods_are_listed_strongest_first_and_texts_never_lead() {
        let ranks: Vec<u8> = METHODS.iter().map(|m| m.info().rank).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        // §2.8: SMS and voice come after the app and push.
        let first_sent = METHODS.iter().position(|m| m.sends_code()).unwrap();
        assert!(METHODS[..first_sent].iter().any(|m| m.info().proving == Proving::Typed));
    }

    #[test]
    fn lock_scopes_are_the_lockable_counters_once_each() {
        let a = AccountId::from_stored("acct");
        let scopes = Registry::standard().lock_scopes(&a);
        let factor = |c| Scope::Factor(c, a.clone());
        assert_eq!(
            scopes,
            vec![
                Scope::SecondFactor(a.clone()),
                factor(crate::factors::totp::TOTP_COUNTER),
                factor(crate::factors::phone::PHONE_COUNTER),
                factor(crate::factors::email::EMAIL_COUNTER),
            ]
        );
        // Every counter, the recovery codes' too, is what an admin's reset clears.
        let all = Registry::standard().counters(&a);
        assert_eq!(all[..4], scopes[..]);
        assert_eq!(all[4..], [factor(crate::factors::recovery::RECOVERY_COUNTER)]);
    }

    #[test]
    fn a_list_names_each_kind_by_its_factor_and_an_unknown_one_as_stored() {
        use crate::factors::kind_label;
        assert_eq!(kind_label("totp"), "authenticator app");
        assert_eq!(kind_label("phone"), "phone");
        assert_eq!(kind_label("webauthn"), "security key or passkey");
        assert_eq!(kind_label("push"), "push device");
        assert_eq!(kind_label("from-a-newer-version"), "from-a-newer-version");
        let mut slugs: Vec<_> = Registry::standard().iter().filter_map(Factor::kind).map(|k| k.slug).collect();
        let n = slugs.len();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), n, "one factor per kind");
    }

    #[test]
    fn each_factor_counter_has_a_name_of_its_own() {
        // The name is the stored key's prefix: two factors sharing one would
        // count each other's failures.
        let a = AccountId::from_stored("acct");
        let mut names: Vec<&str> = Registry::standard().counters(&a).iter().map(Scope::kind).collect();
        let n = names.len();
        names.extend(["password", "unknown_email", "address"]);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n + 3, "{names:?}");
    }

    #[test]
    fn a_sent_method_has_send_wording_and_only_approvals_read_a_challenge_id() {
        for m in METHODS {
            let info = m.info();
            assert!(!info.choice.is_empty() && !info.prompt.is_empty() && !info.refused.is_empty());
            assert_eq!(m.sends_code(), !info.send_label.is_empty(), "{m:?}");
            assert_eq!(
                matches!(m.proof(" x "), crate::factors::Proof::Approval { challenge_id: "x" }),
                m.is_approval()
            );
        }
    }
}
