//! The plain words for one audit event as its owner reads it: what
//! happened, for a failure what to do, whether it needs their attention and
//! which of the log's filters it belongs to. The slugs are the stored
//! `AuditKind::as_str` values, so rows written by older versions (or kinds
//! this version no longer writes) still read as something. What each kind
//! says is data on its `AuditKindInfo`, defined beside the kind.

use super::kind::{AuditKind, Said, Sentence};
use crate::factors::Method;

/// The log's filters: a small fixed set, so a link cannot ask for anything
/// else. `Warnings` is not a kind of event but a property of one (see
/// `Readable::attention`), so an entry may be both a sign-in and a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    SignIns,
    Changes,
    Devices,
    Warnings,
}

impl Category {
    pub const ALL: [Category; 4] = [Self::SignIns, Self::Changes, Self::Devices, Self::Warnings];

    /// The query value (`?kind=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIns => "sign-ins",
            Self::Changes => "changes",
            Self::Devices => "devices",
            Self::Warnings => "warnings",
        }
    }

    /// A filter by its query value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SignIns => "Sign-ins",
            Self::Changes => "Security changes",
            Self::Devices => "Devices and sessions",
            Self::Warnings => "Needs attention",
        }
    }
}

/// How one event reads on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    pub title: String,
    /// What to do about it, for failures and warnings.
    pub advice: Option<&'static str>,
    pub attention: bool,
    pub category: Category,
}

pub(crate) const NOT_YOU_PASSWORD: &str = "If this wasn't you, change your password now and check your authenticators.";
pub(crate) const NOT_YOU_CHANGE: &str =
    "If you didn't do this, change your password now and check your authenticators and recovery codes.";

/// How a method (the API name in "method totp") reads in a sentence.
pub fn method_words(method: &str) -> &'static str {
    match method {
        // The first-step proofs; the second factors name themselves.
        "passkey" => "a passkey",
        "password" => "your password",
        m => Method::parse(m).map_or("a second factor", |m| m.info().in_sentence),
    }
}

/// "method totp" (as sign-in and re-auth record it) → "totp".
pub fn method_of(details: &str) -> Option<&str> {
    details.split(';').find_map(|part| part.trim().strip_prefix("method ")).map(str::trim)
}

/// The words for one event that is not part of a sign-in, from its kind
/// (see `AuditKindInfo`). `device` names the factor the row points at (a
/// companion device, an app), when known.
pub fn single(kind: &str, success: bool, details: &str, device: Option<&str>) -> Words {
    let said = Said { kind, success, details, device };
    if let Some(known) = AuditKind::parse(kind) {
        return known.words(&said);
    }
    let Sentence { title, advice } = unknown(&said);
    Words { title, advice, attention: false, category: Category::Changes }
}

/// "authenticator app" → "Authenticator app".
pub(super) fn capitalized(words: &str) -> String {
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A kind read from its name ("Some future event"), for rows this version
/// has no words for.
pub(super) fn unknown(said: &Said<'_>) -> Sentence {
    let entry = Sentence::new(capitalized(&said.kind.replace('_', " ")));
    if said.success { entry } else { entry.advice("It did not succeed.") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::kind::all;

    #[test]
    fn categories_round_trip_and_nothing_else_parses() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("everything"), None);
        assert_eq!(Category::parse(""), None);
    }

    #[test]
    fn the_methods_read_as_words() {
        assert_eq!(method_of("method totp"), Some("totp"));
        assert_eq!(method_of("password; remembered browser"), None);
        assert_eq!(method_words("totp"), "an authenticator app");
        assert_eq!(method_words("webauthn"), "a security key or passkey");
        assert_eq!(method_words("fax"), "a second factor");
        assert_eq!(method_words("voice"), "a code read out by phone call");
        assert_eq!(method_words("passkey"), "a passkey");
    }

    #[test]
    fn a_keys_set_up_is_not_called_an_app() {
        assert_eq!(
            single("totp_enrollment_started", true, "webauthn", None).title,
            "Started adding a security key or passkey"
        );
        assert_eq!(
            single("authenticator_added", true, "webauthn; two-factor turned on", None).title,
            "Two-factor authentication turned on with a security key or passkey"
        );
        assert_eq!(single("authenticator_added", true, "webauthn", None).title, "Security key or passkey added");
        assert_eq!(
            single("authenticator_added", true, "totp; two-factor turned on", None).title,
            "Two-factor authentication turned on with an authenticator app"
        );
    }

    /// Every kind the domain writes reads as a sentence, not a slug.
    #[test]
    fn no_kind_reads_as_its_slug() {
        for kind in all() {
            for ok in [true, false] {
                let words = single(kind.as_str(), ok, "", None);
                assert!(!words.title.contains('_'), "{kind:?}: {}", words.title);
                assert!(words.title.chars().next().is_some_and(char::is_uppercase), "{kind:?}: {}", words.title);
            }
        }
    }

    #[test]
    fn what_needs_attention_is_marked_with_what_to_do() {
        let denied = single("push_denied", false, "denied: not me", Some("Pixel 8"));
        assert_eq!(denied.title, "A sign-in request was denied on Pixel 8");
        for kind in [
            "push_denied",
            "factor_locked",
            "password_locked",
            "new_device_sign_in",
            "sign_in_outside_allowlist",
            "recovery_codes_revealed",
            "two_factor_reset",
        ] {
            let words = single(kind, false, "", None);
            assert!(words.attention, "{kind} needs attention");
            assert!(words.advice.is_some(), "{kind} says what to do");
        }
        for kind in ["account_created", "sign_out", "password_changed", "authenticator_added"] {
            assert!(!single(kind, true, "", None).attention, "{kind} is routine");
        }
    }

    #[test]
    fn an_unknown_kind_still_reads() {
        assert_eq!(single("some_future_event", true, "", None).title, "Some future event");
    }
}
