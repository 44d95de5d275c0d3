//! Delivery adapters for the domain's `Sender` port: how twostep's messages
//! leave the building.
//!
//! Every message is committed to the outbox first; a worker calls `deliver`
//! once per attempt and decides about retries from the answer (issue 5). So
//! these adapters send exactly once, never retry, never queue, and sort every
//! failure into `Transient` (try later) or `Permanent` (give up). No request
//! waits for a provider, and none reveals by its timing whether a message
//! went out (§2.12). One adapter per provider:
//!
//! - [`SmtpSender`] — e-mail to any SMTP relay, because every deployment
//!   already has one and it needs no vendor account.
//! - [`TwilioSender`] — SMS and voice calls through Twilio's REST API, the
//!   turnkey choice for operators who want codes on phones.
//! - [`WebhookSender`] — SMS, voice or e-mail as a signed JSON POST to the
//!   operator's own endpoint, for any other gateway (an in-house SMS service,
//!   another vendor) without twostep growing an adapter for each.
//! - [`webpush::WebPushSender`] — a Web Push message (RFC 8030/8291/8292)
//!   that wakes a companion page to approve a sign-in; not a `Sender`, since
//!   it carries a challenge id to a device rather than a message to a person.
//! - [`DevOutbox`] — the default when nothing is configured: prints each
//!   message, codes included, so development needs no provider at all.
//!
//! An adapter's error text ends up in logs and in the outbox row, so it never
//! holds the message body or its code (`DeliveryError`'s contract); text from
//! providers that echo what we sent is scrubbed (`scrub`).

mod dev;
mod http;
mod push_wake;
mod smtp;
mod twilio;
/// Public for its `sign` and `verify`, which receivers written in Rust (and
/// the tests) use to check a request.
pub mod webhook;
/// Web Push (RFC 8030, 8291, 8292) to wake a companion page for a sign-in
/// approval; public for `decrypt` and `verify_vapid_jwt`, which receivers
/// and tests use.
pub mod webpush;

pub use dev::DevOutbox;
pub use push_wake::{WebPushWaker, WebhookWaker};
pub use smtp::SmtpSender;
pub use twilio::{TwilioConfig, TwilioSender};
pub use webhook::WebhookSender;

/// An SMTP relay that cannot be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("smtp_url: {0}")]
    Url(String),
    #[error("smtp_from: {0}")]
    From(String),
}

/// A provider that cannot be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("http client: {0}")]
    Client(String),
}

/// The longest error detail kept from a provider's answer: enough for a
/// human to see what went wrong, not enough to bloat the outbox row.
const MAX_DETAIL: usize = 300;

/// Words of the message at least this long count as quoting it when they
/// turn up in a provider's text: links, tokens and codes are, common words
/// mostly are not.
const QUOTE_MIN: usize = 8;

/// Makes provider text safe for a log line or the outbox row. Text that
/// quotes the message (some providers echo a refused body back) is withheld
/// whole, since a partial echo may still hold a link or a code; control
/// characters are flattened (no forged log lines) and the length capped.
pub(crate) fn scrub(detail: &str, message: &twostep_domain::notify::store::Outbound) -> String {
    if quotes(detail, message) {
        return "[withheld: it quoted the message]".to_owned();
    }
    let mut out: String = detail.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

pub(crate) fn quotes(detail: &str, message: &twostep_domain::notify::store::Outbound) -> bool {
    let code = message.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if code.is_some_and(|c| detail.contains(c)) {
        return true;
    }
    [message.text.as_str(), message.html.as_str()]
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(|word| word.trim_matches(|c: char| c.is_ascii_punctuation()))
        .filter(|word| word.len() >= QUOTE_MIN)
        .any(|word| detail.contains(word))
}

#[cfg(test)]
mod tests {
    use twostep_domain::notify::store::{Channel, Outbound};

    use super::scrub;

    fn message() -> Outbound {
        Outbound {
            id: "m1".into(),
            channel: Channel::Sms,
            to: "+15550001111".into(),
            subject: String::new(),
            text: "Your twostep code is 493817. Or: https://twostep.example/reset#k3j4h5g6".into(),
            html: String::new(),
            code: Some("493817".into()),
            expires_at: twostep_domain::time::Timestamp::from_secs(0),
        }
    }

    #[test]
    fn scrub_withholds_text_that_quotes_the_message() {
        let m = message();
        for echo in [
            "rejected body 'Your twostep code is 493817'",
            "code 493817 refused",
            "link https://twostep.example/reset#k3j4h5g6 is blocked",
        ] {
            let out = scrub(echo, &m);
            assert_eq!(out, "[withheld: it quoted the message]", "{echo}");
        }
        assert_eq!(scrub("The 'To' number is not valid", &m), "The 'To' number is not valid");
    }

    #[test]
    fn scrub_flattens_control_characters_and_caps_length() {
        let m = message();
        let long = format!("line one\nline two {}", "é".repeat(400));
        let out = scrub(&long, &m);
        assert!(!out.contains('\n'));
        assert!(out.len() <= super::MAX_DETAIL + '…'.len_utf8());
        assert!(out.ends_with('…'));
    }
}
