//! What the pages that take a code share: the wording for each method and
//! the other ways offered under the code field. (What a refused send means
//! is `error::send`.)

use twostep_domain::factors::Method;

use super::pages::{Choice, SendButton};

/// The button that sends the first code.
pub fn send_label(m: Method) -> &'static str {
    m.info().send_label
}

/// The button that sends another one. A different name from the first
/// send where it helps ("Call me again"), so each button says what it does.
pub fn resend_label(m: Method) -> &'static str {
    m.info().resend_label
}

/// The send button for `m`, when its code is sent: "Text me a code" until
/// one went to `sent_to`, then "Send a new code" after `wait` seconds.
pub fn send_button(m: Method, sent_to: Option<String>, wait: i64) -> Option<SendButton> {
    m.sends_code().then(|| SendButton {
        label: if sent_to.is_some() { resend_label(m) } else { send_label(m) },
        sent_to,
        wait: wait.max(0),
    })
}

/// How the code field is labelled at sign-in.
pub fn code_label(m: Method) -> &'static str {
    m.info().prompt
}

/// The method a page shows: the one asked for when the account has it,
/// else the account's first (strongest) one.
pub fn pick(methods: &[Method], asked: Option<&str>) -> Method {
    asked
        .and_then(Method::parse)
        .filter(|m| methods.contains(m))
        .or_else(|| methods.first().copied())
        .unwrap_or(Method::STRONGEST)
}

/// The other methods, each as a link (app, recovery code) or a button that
/// sends a code or a push. `href` builds the link to the page showing a method.
pub fn others(methods: &[Method], current: Method, href: impl Fn(Method) -> String, suffix: &str) -> Vec<Choice> {
    methods
        .iter()
        .copied()
        .filter(|m| *m != current)
        .map(|m| {
            // A link switches the form ("… instead"); a button acts at once.
            let acts = m.sends_code() || m.is_approval();
            let label = if acts { m.info().choice.to_owned() } else { format!("{}{suffix}", m.info().choice) };
            Choice { method: m.as_str(), label, sends: acts, href: href(m) }
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

    fn m(name: &str) -> Method {
        Method::parse(name).expect("a known method")
    }

    #[test]
    fn the_asked_method_is_used_only_when_the_account_has_it() {
        let phone_only = [m("sms"), m("voice"), m("recovery_code")];
        assert_eq!(pick(&phone_only, None), m("sms"));
        assert_eq!(pick(&phone_only, Some("voice")), m("voice"));
        assert_eq!(pick(&phone_only, Some("totp")), m("sms"));
        assert_eq!(pick(&phone_only, Some("bogus")), m("sms"));
        assert_eq!(pick(&[], None), Method::STRONGEST);
    }

    #[test]
    fn other_methods_are_links_or_send_buttons() {
        let all = [m("totp"), m("sms"), m("voice"), m("email"), m("recovery_code")];
        let o = others(&all, m("sms"), |m| format!("/x?method={}", m.as_str()), "");
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
        let o = others(&[m("totp"), m("push"), m("recovery_code")], m("totp"), |_| String::new(), "");
        assert_eq!((o[0].label.as_str(), o[0].sends, o[0].method), ("Approve on my phone (push)", true, "push"));
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
