//! What the pages that take a code share: the wording for each method and
//! the other ways offered under the code field. (What a refused send means
//! is `error::send`.)

use twostep_domain::factors::Method;

use super::pages::{Choice, SendButton};

/// Methods a code is sent for (rather than read from an app or a list).
pub fn is_sent(m: Method) -> bool {
    matches!(m, Method::Sms | Method::Voice | Method::Email)
}

/// The button that sends the first code.
pub fn send_label(m: Method) -> &'static str {
    match m {
        Method::Voice => "Call me",
        Method::Email => "E-mail me a code",
        _ => "Text me a code",
    }
}

/// The button that sends another one. A different name from the first
/// send, so each button on a page says what it does.
pub fn resend_label(m: Method) -> &'static str {
    if m == Method::Voice { "Call me again" } else { "Send a new code" }
}

/// The send button for `m`, when its code is sent: "Text me a code" until
/// one went to `sent_to`, then "Send a new code" after `wait` seconds.
pub fn send_button(m: Method, sent_to: Option<String>, wait: i64) -> Option<SendButton> {
    is_sent(m).then(|| SendButton {
        label: if sent_to.is_some() { resend_label(m) } else { send_label(m) },
        sent_to,
        wait: wait.max(0),
    })
}

/// How the code field is labelled at sign-in.
pub fn code_label(m: Method) -> &'static str {
    match m {
        Method::RecoveryCode => "Enter one of your recovery codes",
        Method::Sms => "Enter the 6-digit code we texted you",
        Method::Voice => "Enter the 6-digit code we read out to you",
        Method::Email => "Enter the 6-digit code we e-mailed you",
        Method::Totp => "Enter the 6-digit code from your authenticator app",
        Method::Push => "Approve the sign-in on your companion device",
    }
}

/// The method a page shows: the one asked for when the account has it,
/// else the account's first (strongest) one.
pub fn pick(methods: &[Method], asked: Option<&str>) -> Method {
    asked
        .and_then(Method::parse)
        .filter(|m| methods.contains(m))
        .or_else(|| methods.first().copied())
        .unwrap_or(Method::Totp)
}

/// How a push is offered among the other methods at sign-in.
pub const PUSH_CHOICE: &str = "Approve on my phone (push)";

/// The other methods, each as a link (app, recovery code) or a button that
/// sends a code or a push. `href` builds the link to the page showing a method.
pub fn others(methods: &[Method], current: Method, href: impl Fn(Method) -> String, suffix: &str) -> Vec<Choice> {
    methods
        .iter()
        .copied()
        .filter(|m| *m != current)
        .map(|m| {
            let label = match m {
                Method::Totp => format!("Use your authenticator app{suffix}"),
                Method::RecoveryCode => format!("Use a recovery code{suffix}"),
                Method::Push => PUSH_CHOICE.to_owned(),
                other => send_label(other).to_owned(),
            };
            Choice { method: m.as_str(), label, sends: is_sent(m) || m == Method::Push, href: href(m) }
        })
        .collect()
}

/// A masked destination carried through a form, shown back only when it
/// looks like one of ours: the text reads "We sent a code to …", so it must
/// not become a place for a forged message.
pub fn masked_or_none(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    let phone = s.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '•'));
    let email = s.split_once("•••@").is_some_and(|(first, domain)| {
        first.chars().count() <= 1
            && !domain.is_empty()
            && domain.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'))
    });
    (!s.is_empty() && s.chars().count() <= 64 && (phone || email)).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asked_method_is_used_only_when_the_account_has_it() {
        let phone_only = [Method::Sms, Method::Voice, Method::RecoveryCode];
        assert_eq!(pick(&phone_only, None), Method::Sms);
        assert_eq!(pick(&phone_only, Some("voice")), Method::Voice);
        assert_eq!(pick(&phone_only, Some("totp")), Method::Sms);
        assert_eq!(pick(&phone_only, Some("bogus")), Method::Sms);
        assert_eq!(pick(&[], None), Method::Totp);
    }

    #[test]
    fn other_methods_are_links_or_send_buttons() {
        let all = [Method::Totp, Method::Sms, Method::Voice, Method::Email, Method::RecoveryCode];
        let o = others(&all, Method::Sms, |m| format!("/x?method={}", m.as_str()), "");
        let labels: Vec<_> = o.iter().map(|c| (c.label.as_str(), c.sends)).collect();
        assert_eq!(
            labels,
            [
                ("Use your authenticator app", false),
                ("Call me", true),
                ("E-mail me a code", true),
                ("Use a recovery code", false)
            ]
        );
        assert_eq!(o[3].href, "/x?method=recovery_code");
        // A push is sent (a form), never a link a prefetch could follow.
        let o = others(&[Method::Totp, Method::Push, Method::RecoveryCode], Method::Totp, |_| String::new(), "");
        assert_eq!((o[0].label.as_str(), o[0].sends, o[0].method), (PUSH_CHOICE, true, "push"));
    }

    #[test]
    fn only_masked_destinations_are_echoed() {
        assert_eq!(masked_or_none(Some("+1 ••• ••• ••23")).as_deref(), Some("+1 ••• ••• ••23"));
        assert_eq!(masked_or_none(Some("a•••@example.com")).as_deref(), Some("a•••@example.com"));
        assert_eq!(masked_or_none(Some("Call 555 now: your account is locked")), None);
        assert_eq!(masked_or_none(Some("a•••@evil.com/please call")), None);
        assert_eq!(masked_or_none(Some("")), None);
        assert_eq!(masked_or_none(None), None);
    }
}
