//! The provider adapters against local receivers: what goes on the wire, and
//! how each kind of answer is sorted into delivered, transient or permanent.

use std::sync::Arc;

use twostep_delivery::webhook::{self, DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use twostep_delivery::{DevOutbox, SmtpSender, TwilioConfig, TwilioSender, WebhookSender};
use twostep_domain::notify::store::{Channel, DeliveryError, Outbound, Sender};
use twostep_domain::time::Timestamp;
use twostep_testkit::receiver::Method;
use twostep_testkit::{FakeClock, Receiver, closed_port};

const CODE: &str = "493817";
const TEXT: &str = "Your twostep code is 493817. It expires in 10 minutes.";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn message(channel: Channel, to: &str) -> Outbound {
    Outbound {
        id: "0194f1c2-msg".into(),
        channel,
        to: to.into(),
        subject: if channel == Channel::Email { "Your twostep code".into() } else { String::new() },
        text: TEXT.into(),
        html: if channel == Channel::Email { format!("<p>Your code: <b>{CODE}</b></p>") } else { String::new() },
        code: Some(CODE.into()),
        expires_at: Timestamp::from_secs(NOW + 600),
    }
}

fn twilio(base_url: &str) -> TwilioSender {
    TwilioSender::new(TwilioConfig {
        account_sid: "AC123".into(),
        auth_token: "secret".into(),
        from: "+15550009999".into(),
        base_url: base_url.into(),
    })
    .expect("valid twilio config")
}

const WEBHOOK_SECRET: &[u8] = b"whsec-test-0123456789";

fn webhook(url: &str) -> WebhookSender {
    WebhookSender::new(url, WEBHOOK_SECRET.to_vec(), Arc::new(FakeClock::at(NOW))).expect("valid webhook config")
}

/// No error text may carry what the message said.
fn assert_clean(error: &DeliveryError) {
    let text = error.to_string();
    assert!(!text.contains(CODE), "code leaked into {text:?}");
    assert!(!text.contains("Your twostep code"), "body leaked into {text:?}");
}

// ---------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------

#[tokio::test]
async fn twilio_sms_posts_the_message_form_with_basic_auth() {
    let rx = Receiver::answering(201, r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#).await;
    let sender = twilio(&rx.url);
    assert_eq!(sender.provider(), "twilio");

    let delivered = sender.deliver(&message(Channel::Sms, "+15550001111")).await.expect("delivered");
    assert_eq!(delivered.provider_id.as_deref(), Some("SM0123456789abcdef0123456789abcdef"));

    let req = rx.only();
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Messages.json");
    // base64("AC123:secret")
    assert_eq!(req.header("authorization"), "Basic QUMxMjM6c2VjcmV0");
    assert_eq!(req.header("content-type"), "application/x-www-form-urlencoded");
    let mut form = req.fields();
    form.sort();
    assert_eq!(
        form,
        [
            ("Body".to_owned(), TEXT.to_owned()),
            ("From".to_owned(), "+15550009999".to_owned()),
            ("To".to_owned(), "+15550001111".to_owned()),
        ]
    );
}

#[tokio::test]
async fn twilio_voice_places_a_call_that_reads_the_code_twice() {
    let rx = Receiver::answering(201, r#"{"sid":"CA0123456789abcdef0123456789abcdef"}"#).await;
    let delivered = twilio(&rx.url).deliver(&message(Channel::Voice, "+15550001111")).await.expect("delivered");
    assert_eq!(delivered.provider_id.as_deref(), Some("CA0123456789abcdef0123456789abcdef"));

    let req = rx.only();
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Calls.json");
    assert_eq!(req.header("authorization"), "Basic QUMxMjM6c2VjcmV0");
    assert_eq!(req.field("To"), "+15550001111");
    assert_eq!(req.field("From"), "+15550009999");
    let twiml = req.field("Twiml");
    assert!(twiml.contains("<Response><Say>"), "{twiml}");
    let spelled = "4, 9, 3, 8, 1, 7";
    assert_eq!(twiml.matches(spelled).count(), 2, "the code, digit by digit, twice: {twiml}");
    assert!(!twiml.contains(CODE), "never the code as one number: {twiml}");
    assert!(req.fields().iter().all(|(k, _)| k != "Body"));
}

#[tokio::test]
async fn twilio_refuses_email_without_a_request() {
    let rx = Receiver::answering(201, r#"{"sid":"SM1"}"#).await;
    let err = twilio(&rx.url).deliver(&message(Channel::Email, "a@example.test")).await.expect_err("no e-mail");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn twilio_server_errors_and_throttling_are_transient() {
    for status in [500, 503, 429] {
        let rx = Receiver::answering(
            status,
            r#"{"code":20429,"message":"Too Many Requests","more_info":"https://x","status":429}"#,
        )
        .await;
        let err = twilio(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not delivered");
        assert!(matches!(err, DeliveryError::Transient(_)), "{status}: {err:?}");
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        assert!(err.to_string().contains("20429"), "Twilio's code is kept: {err}");
        assert_clean(&err);
        assert_eq!(rx.requests().len(), 1, "sent once, no retry inside the adapter");
    }
}

#[tokio::test]
async fn twilio_client_errors_are_permanent_with_twilios_reason() {
    let rx = Receiver::answering(
        400,
        r#"{"code":21211,"message":"The 'To' number +15550001111 is not a valid phone number.","status":400}"#,
    )
    .await;
    let err = twilio(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not delivered");
    let DeliveryError::Permanent(text) = &err else { panic!("permanent expected: {err:?}") };
    assert!(text.contains("400"), "{text}");
    assert!(text.contains("21211") && text.contains("not a valid phone number"), "{text}");
    assert_clean(&err);

    let rx = Receiver::answering(401, r#"{"code":20003,"message":"Authenticate"}"#).await;
    let err = twilio(&rx.url).deliver(&message(Channel::Voice, "+15550001111")).await.expect_err("not delivered");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn twilio_connection_refused_is_transient() {
    let base = format!("http://127.0.0.1:{}", closed_port().await);
    let err = twilio(&base).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("nobody listening");
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert_clean(&err);
}

#[tokio::test]
async fn an_echoing_provider_does_not_leak_the_body_into_errors() {
    // A provider that quotes back what it refused: the text must not reach
    // the error (and so the log and the outbox row).
    let answer = r#"{"code":30007,"message":"Message 'Your twostep code is 493817. It expires in 10 minutes.' filtered; code 493817"}"#;
    for status in [400, 500] {
        let rx = Receiver::answering(status, answer).await;
        let err = twilio(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not delivered");
        assert!(err.to_string().contains("30007"), "{err}");
        assert_clean(&err);

        let rx = Receiver::answering(status, r#"{"error":"bad message: Your twostep code is 493817"}"#).await;
        let err = webhook(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not delivered");
        assert_clean(&err);
    }
}

// ---------------------------------------------------------------------------
// Webhook
// ---------------------------------------------------------------------------

#[tokio::test]
async fn webhook_posts_signed_json() {
    let rx = Receiver::answering(202, r#"{"id":"gw-42"}"#).await;
    let sender = webhook(&format!("{}/hooks/twostep", rx.url));
    assert_eq!(sender.provider(), "webhook");

    let delivered = sender.deliver(&message(Channel::Voice, "+15550001111")).await.expect("delivered");
    assert_eq!(delivered.provider_id.as_deref(), Some("gw-42"));

    let req = rx.only();
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/hooks/twostep");
    assert_eq!(req.header("content-type"), "application/json");
    let json: serde_json::Value = serde_json::from_slice(&req.body).expect("a JSON body");
    assert_eq!(
        json,
        serde_json::json!({
            "channel": "voice",
            "to": "+15550001111",
            "message": TEXT,
            "code_expires_at": "2026-01-01T00:10:00Z",
            "id": "0194f1c2-msg",
        })
    );

    let timestamp: i64 = req.header(TIMESTAMP_HEADER).parse().expect("a unix timestamp");
    assert_eq!(timestamp, NOW, "from the injected clock");
    let signature = &req.header(SIGNATURE_HEADER);
    assert!(signature.starts_with("v1=") && signature.len() == 3 + 64, "{signature}");
    assert_eq!(*signature, webhook::sign(WEBHOOK_SECRET, timestamp, &req.body));
    assert!(webhook::verify(WEBHOOK_SECRET, timestamp, &req.body, signature, NOW + 5, DEFAULT_TOLERANCE_SECS));

    // A changed body, another timestamp, another secret, a stale request.
    let mut tampered = req.body.to_vec();
    let at = tampered.iter().position(|b| *b == b'+').expect("the number is in the body");
    tampered[at + 1] = b'9';
    assert!(!webhook::verify(WEBHOOK_SECRET, timestamp, &tampered, signature, NOW, DEFAULT_TOLERANCE_SECS));
    assert!(!webhook::verify(WEBHOOK_SECRET, timestamp + 1, &req.body, signature, NOW, DEFAULT_TOLERANCE_SECS));
    assert!(!webhook::verify(b"another secret", timestamp, &req.body, signature, NOW, DEFAULT_TOLERANCE_SECS));
    assert!(!webhook::verify(WEBHOOK_SECRET, timestamp, &req.body, signature, NOW + 301, DEFAULT_TOLERANCE_SECS));
}

#[tokio::test]
async fn webhook_carries_every_channel() {
    for (channel, name) in [(Channel::Sms, "sms"), (Channel::Email, "email")] {
        let rx = Receiver::answering(200, "").await;
        let delivered = webhook(&rx.url).deliver(&message(channel, "+15550001111")).await.expect("delivered");
        assert_eq!(delivered.provider_id, None, "no JSON id in the answer");
        let json: serde_json::Value = serde_json::from_slice(&rx.only().body).expect("a JSON body");
        assert_eq!(json["channel"], name);
    }
}

#[tokio::test]
async fn webhook_statuses_sort_like_twilio() {
    for (status, transient) in [(500, true), (502, true), (429, true), (400, false), (404, false), (410, false)] {
        let rx = Receiver::answering(status, r#"{"error":"no such route"}"#).await;
        let err = webhook(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not delivered");
        assert_eq!(matches!(err, DeliveryError::Transient(_)), transient, "{status}: {err:?}");
        assert!(err.to_string().contains("no such route"), "{err}");
        assert_clean(&err);
    }
    // A redirect is not followed: it would replay a signed request elsewhere.
    let rx = Receiver::answering(308, "").await;
    let err = webhook(&rx.url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("not followed");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert_eq!(rx.requests().len(), 1);

    let url = format!("http://127.0.0.1:{}/hook?token=operator-secret", closed_port().await);
    let err = webhook(&url).deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("nobody listening");
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(!err.to_string().contains("operator-secret"), "the URL stays out of errors: {err}");
    assert_clean(&err);
}

// ---------------------------------------------------------------------------
// SMTP (sent end to end against a real sink by the lead's tests) and dev
// ---------------------------------------------------------------------------

#[test]
fn smtp_sender_refuses_bad_settings() {
    assert!(SmtpSender::new("http://mail.example.test", "twostep@example.test").is_err());
    assert!(SmtpSender::new("not a url", "twostep@example.test").is_err());
    assert!(SmtpSender::new("smtp://127.0.0.1:2525", "not an address").is_err());
    assert!(SmtpSender::new("smtp://127.0.0.1:2525", "twostep <twostep@example.test>").is_ok());
    assert!(SmtpSender::new("smtps://mail.example.test", "twostep@example.test").is_ok());
    assert!(SmtpSender::new("smtp://u:p@mail.example.test:587?tls=required", "twostep@example.test").is_ok());
}

#[tokio::test]
async fn smtp_sends_e_mail_only_and_an_absent_relay_is_transient() {
    let sender = SmtpSender::new(&format!("smtp://127.0.0.1:{}", closed_port().await), "twostep@example.test")
        .expect("valid settings");
    assert_eq!(sender.provider(), "smtp");

    let err = sender.deliver(&message(Channel::Sms, "+15550001111")).await.expect_err("no SMS over SMTP");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");

    let err = sender.deliver(&message(Channel::Email, "not an address")).await.expect_err("bad recipient");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");

    let err = sender.deliver(&message(Channel::Email, "user@example.test")).await.expect_err("nobody listening");
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert_clean(&err);
}

#[tokio::test]
async fn dev_outbox_always_delivers() {
    let delivered = DevOutbox.deliver(&message(Channel::Voice, "+15550001111")).await.expect("delivered");
    assert_eq!(delivered.provider_id.as_deref(), Some("dev-0194f1c2-msg"));
}
