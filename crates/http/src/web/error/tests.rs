use super::*;

fn said(shown: Reply) -> Refusal {
    match shown {
        Reply::Inline(r) => r,
        Reply::Page(p) => panic!("a page, not a refusal: {}", p.status()),
    }
}

#[test]
fn throttles_name_the_wait() {
    let r = said(send(SendError::Throttled { retry_after: 12 }, SendForm::Reauth, 30));
    assert_eq!(r.message, "We sent a code moments ago. Wait 12 seconds before asking for a new one.");
    assert_eq!((r.status, r.wait), (StatusCode::TOO_MANY_REQUESTS, 12));
    let r = said(send(SendError::Throttled { retry_after: 1800 }, SendForm::Reauth, 30));
    assert!(r.message.contains("30 minutes"), "{}", r.message);
    let r = said(send(SendError::SentForEarlier { retry_after: 1 }, SendForm::Reauth, 30));
    assert_eq!(
        r.message,
        "A code went out moments ago for an earlier sign-in, and only a code sent for this one works here. Wait 1 second before asking for a new one."
    );
    let r = said(send(SendError::InvalidPhone("not a valid phone number".into()), SendForm::Reauth, 30));
    assert_eq!(r.message, "Not a valid phone number.");
}

#[test]
fn every_lock_out_reads_the_same_and_asks_for_a_recovery_code() {
    let web = WebConfig {
        public_origin: "http://127.0.0.1".into(),
        localhost_origin: None,
        secure_cookies: false,
        dev_mode: false,
        trusted_proxies: Vec::new(),
        vapid_public_key: None,
        place_header: None,
    };
    for r in [
        said(code_step(LoginError::FactorLocked, m("totp"))),
        said(reauth(FactorError::FactorLocked)),
        said(send(SendError::FactorLocked, SendForm::SignIn(&web), 30)),
        said(push_sign_in(PushError::FactorLocked, &web)),
        said(push_reauth(PushError::FactorLocked)),
    ] {
        assert_eq!(r.message, LOCKED);
        assert_eq!(r.method(m("sms")), m("recovery_code"));
    }
}

#[test]
fn a_wrong_code_is_worded_for_its_method() {
    let wrong = |m| said(code_step(LoginError::InvalidCode, m)).message;
    assert!(wrong(m("recovery_code")).contains("not valid or was already used"));
    assert!(wrong(m("sms")).contains("latest code we sent"));
    assert!(wrong(m("totp")).contains("authenticator app"));
}

#[test]
fn the_last_two_tries_are_counted_out_loud() {
    let wrong = |tries_left| said(code_step(LoginError::WrongCode { tries_left }, m("totp"))).message;
    assert!(!wrong(4).contains("left"));
    assert!(wrong(2).ends_with("2 tries left, then sign-in starts over."), "{}", wrong(2));
    assert!(wrong(1).ends_with("1 try left, then sign-in starts over."), "{}", wrong(1));
}

#[test]
fn fragments_become_sentences() {
    assert_eq!(sentence("an allow-list holds at most 50 entries"), "An allow-list holds at most 50 entries.");
    assert_eq!(sentence("Done."), "Done.");
    assert_eq!(sentence(""), "");
}

#[test]
fn waits_read_in_seconds_then_minutes() {
    assert_eq!(wait_text(12), "12 seconds");
    assert_eq!(wait_text(1), "1 second");
    assert_eq!(wait_text(0), "1 second");
    assert_eq!(wait_text(1800), "30 minutes");
}

fn m(name: &str) -> Method {
    Method::parse(name).expect("a known method")
}
