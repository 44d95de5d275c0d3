//! E-mail addresses, normalised so one mailbox is one account.
//!
//! We lower-case the whole address: RFC 5321 lets the local part be
//! case-sensitive, but no mainstream provider treats it so, and two accounts
//! for `Alice@x` and `alice@x` would be a support and phishing hazard.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("enter an e-mail address like name@example.com")]
    Invalid,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = normalise(input.trim());
        if s.len() > 254 {
            return Err(EmailError::Invalid);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Invalid)?;
        if !valid_local(local) || !valid_domain(domain) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(s))
    }

    /// For values read back from storage, which were parsed when written.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The local part's words, which a password must not consist of.
    pub fn context_words(&self) -> Vec<String> {
        let local = self.0.split('@').next().unwrap_or_default();
        local.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_owned).collect()
    }
}

/// NFKC and lower case, repeated to a fixed point: lower-casing can produce
/// a sequence NFKC composes further (Greek tonos with ypogegrammeni), and a
/// form that changed on a second parse would let one mailbox hold two
/// accounts. Found by the `email` fuzz target.
fn normalise(input: &str) -> String {
    let mut s: String = input.nfkc().collect::<String>().to_lowercase();
    for _ in 0..4 {
        let next: String = s.nfkc().collect::<String>().to_lowercase();
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        let e = Email::parse("  Alice.Smith@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@@example.com",
            "al ice@example.com",
            "alice@exa mple.com",
            "alice@-example.com",
            "alice@example.c",
            ".alice@example.com",
            "a..b@example.com",
            "alice@example.123",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn parsing_is_idempotent_for_greek_with_ypogegrammeni() {
        let a = Email::parse("\u{0386}\u{0345}@example.com").expect("valid");
        let b = Email::parse("\u{1fb4}@example.com").expect("valid");
        assert_eq!(a, b);
        assert_eq!(Email::parse(a.as_str()).expect("valid"), a);
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let long_domain = format!("a@{}.com", "b".repeat(250));
        assert!(Email::parse(&long_domain).is_err());
    }

    #[test]
    fn context_words_come_from_the_local_part() {
        let e = Email::parse("john.doe-99@example.com").expect("valid");
        assert_eq!(e.context_words(), vec!["john", "doe"]);
    }
}
