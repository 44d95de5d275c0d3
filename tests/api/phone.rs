//! Phones and codes by SMS and voice through a local receiver speaking
//! Twilio's API (issue 5; SEC-26, SEC-28, SEC-29, SEC-35).

use serde_json::json;
use twostep::config::PhoneProvider;
use twostep_testkit::{Db, Receiver, TestApp, User, each_backend};

const SID: &str = "AC0123456789abcdef";
const TOKEN: &str = "twilio-secret-token";
const FROM: &str = "+14155550100";
const NUMBER: &str = "+14155550123";
const OTHER: &str = "+12015550123";

pub async fn twilio_app(db: Db) -> (TestApp, Receiver) {
    twilio_app_with(db, |_| {}).await
}

/// `twilio_app` with settings of the test's own.
pub async fn twilio_app_with(
    db: Db,
    tweak: impl FnOnce(&mut twostep_domain::settings::Settings),
) -> (TestApp, Receiver) {
    let rx = Receiver::start().await;
    (TestApp::spawn_providers(db, None, twilio(&rx), tweak).await, rx)
}

/// `twilio_app` whose mail goes to a real SMTP server on loopback.
pub async fn twilio_app_with_mail(db: Db) -> (TestApp, Receiver, twostep_testkit::SmtpSink) {
    let (rx, sink) = (Receiver::start().await, twostep_testkit::SmtpSink::start());
    (TestApp::spawn_providers(db, Some(sink.url.clone()), twilio(&rx), |_| {}).await, rx, sink)
}

fn twilio(rx: &Receiver) -> PhoneProvider {
    PhoneProvider::Twilio {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: FROM.into(),
        base_url: rx.url.clone(),
    }
}

/// Adds and confirms `number` as the user's phone; returns the confirm body.
pub async fn add_phone(app: &TestApp, rx: &Receiver, user: &User, number: &str) -> serde_json::Value {
    let n = rx.requests().len();
    let sent = app.post("/api/v1/me/phone", &json!({"phone": number}), Some(&user.token)).await.assert_status(202);
    assert!(sent.body["expires_in"].as_i64().expect("expires_in") == 600);
    let code = rx.code(n + 1).await;
    let done = app.post("/api/v1/me/phone/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(200);
    // Past the resend cooldown of the number (SEC-35).
    app.clock.advance(31);
    done.body
}

/// The password step; returns the login token.
async fn password_step(app: &TestApp, user: &User) -> String {
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "second_factor_required");
    login.str("login_token")
}

each_backend!(sms_verifies_the_phone_and_signs_in);
async fn sms_verifies_the_phone_and_signs_in(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    let sent = app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    assert_eq!(sent.str("sent_to"), "+1 ••• ••• ••23");

    // The exact request Twilio's API expects.
    let req = &rx.wait_for(1).await[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
    let basic = data_encoding::BASE64.encode(format!("{SID}:{TOKEN}").as_bytes());
    assert_eq!(req.header("authorization"), format!("Basic {basic}"));
    assert!(req.header("content-type").starts_with("application/x-www-form-urlencoded"));
    let form = req.form();
    assert_eq!(form["To"], NUMBER);
    assert_eq!(form["From"], FROM);
    let code = rx.code(1).await;
    assert!(form["Body"].contains(&code), "{:?}", form["Body"]);

    // Not a method before it is confirmed (SEC-28).
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
    let done = app.post("/api/v1/me/phone/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(200);
    assert_eq!(done.str("phone"), NUMBER);
    assert_eq!(done.body["recovery_codes"].as_array().expect("codes").len(), 10, "the phone turned 2FA on");
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["methods"], json!(["sms", "voice", "recovery_code"]));

    // Sign in with "Text me a code", past the number's resend cooldown.
    app.clock.advance(31);
    let login_token = password_step(&app, &user).await;
    let c = app
        .post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "sms"}), None)
        .await
        .assert_status(202);
    assert_eq!(c.str("method"), "sms");
    assert_eq!(c.str("sent_to"), "+1 ••• ••• ••23");
    assert_eq!(c.body["expires_in"], 600);
    let code = rx.code(2).await;
    let v = app
        .post("/api/v1/login/verify", &json!({"login_token": login_token, "method": "sms", "code": code}), None)
        .await
        .assert_status(200);
    assert_eq!(v.str("status"), "authenticated");
    app.get("/api/v1/me", Some(&v.str("session_token"))).await.assert_status(200);
}

each_backend!(a_call_reads_the_code_digit_by_digit_twice);
async fn a_call_reads_the_code_digit_by_digit_twice(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    add_phone(&app, &rx, &user, NUMBER).await;
    let login_token = password_step(&app, &user).await;
    app.post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "voice"}), None)
        .await
        .assert_status(202);
    let call = &rx.wait_for(2).await[1];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, format!("/2010-04-01/Accounts/{SID}/Calls.json"));
    let form = call.form();
    assert_eq!(form["To"], NUMBER);
    assert_eq!(form["From"], FROM);
    let twiml = &form["Twiml"];
    let say = twiml
        .split_once("<Response><Say>")
        .and_then(|(_, rest)| rest.split_once("</Say></Response>"))
        .map_or_else(|| panic!("TwiML with one <Say>: {twiml}"), |(say, _)| say);
    // Digits separated so the voice reads them one by one; said twice.
    let digits: String = say.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 12, "{twiml}");
    let code = &digits[..6];
    assert_eq!(&digits[6..], code);
    let spoken: Vec<String> = code.chars().map(|c| c.to_string()).collect();
    assert!(twiml.contains(&spoken.join(", ")), "{twiml}");
    app.post("/api/v1/login/verify", &json!({"login_token": login_token, "method": "voice", "code": code}), None)
        .await
        .assert_status(200);
}

each_backend!(numbers_are_validated_and_normalised);
async fn numbers_are_validated_and_normalised(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    for bad in [
        json!({"phone": "+1 555"}),
        json!({"phone": "call me maybe"}),
        json!({"phone": "+44 909 879 0000"}),
        json!({"phone": "+1 800 234 5678"}),
        json!({"country": "ZZ", "number": "0123"}),
        json!({"phone": "x".repeat(10_000)}),
    ] {
        app.post("/api/v1/me/phone", &bad, Some(&user.token)).await.assert_error(400, "invalid_phone");
    }
    // A fixed line takes calls but not texts.
    app.post("/api/v1/me/phone", &json!({"phone": "+44 20 7946 0000"}), Some(&user.token))
        .await
        .assert_error(400, "invalid_phone");
    app.post("/api/v1/me/phone", &json!({"phone": "+44 20 7946 0000", "channel": "voice"}), Some(&user.token))
        .await
        .assert_status(202);
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER, "country": "US"}), Some(&user.token))
        .await
        .assert_error(400, "invalid_request");
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER, "channel": "pigeon"}), Some(&user.token))
        .await
        .assert_error(400, "invalid_request");
    // Country and number as typed, stored as E.164.
    app.clock.advance(31);
    let sent = app
        .post("/api/v1/me/phone", &json!({"country": "gb", "number": "07400 123456"}), Some(&user.token))
        .await
        .assert_status(202);
    assert!(sent.str("sent_to").starts_with("+44 "), "{}", sent.str("sent_to"));
    assert!(sent.str("sent_to").ends_with("56"));
    let last = rx.wait_for(2).await;
    assert_eq!(last[1].form()["To"], "+447400123456");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countries_outside_the_allow_list_are_refused() {
    // SEC-35: the default list is the sender number's country (US here).
    let rx = Receiver::start().await;
    let phone = PhoneProvider::Twilio {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: FROM.into(),
        base_url: rx.url.clone(),
    };
    let app = TestApp::spawn_providers(Db::Sqlite, None, phone, |s| s.phone_countries = vec!["US".into()]).await;
    let user = app.user().await;
    app.post("/api/v1/me/phone", &json!({"phone": "+33 6 12 34 56 78"}), Some(&user.token))
        .await
        .assert_error(400, "invalid_phone");
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
}

each_backend!(changing_the_number_keeps_the_old_one_until_the_new_is_verified);
async fn changing_the_number_keeps_the_old_one_until_the_new_is_verified(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    add_phone(&app, &rx, &user, NUMBER).await;

    // SEC-29: a stale session cannot change the phone.
    app.clock.advance(11 * 60);
    app.post("/api/v1/me/phone", &json!({"phone": OTHER}), Some(&user.token))
        .await
        .assert_error(403, "reauth_required");
    let stale = rx.requests().len();
    app.post("/api/v1/me/reauth/challenge", &json!({"method": "sms"}), Some(&user.token)).await.assert_status(202);
    let code = rx.code(stale + 1).await;
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "sms", "code": code}),
        Some(&user.token),
    )
    .await
    .assert_status(204);

    app.clock.advance(31);
    app.post("/api/v1/me/phone", &json!({"phone": OTHER}), Some(&user.token)).await.assert_status(202);
    let new_code = rx.code(stale + 2).await;
    assert_eq!(rx.requests()[stale + 1].form()["To"], OTHER);

    // Until confirmed, sign-in codes still go to the old number.
    let login_token = password_step(&app, &user).await;
    app.post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "sms"}), None)
        .await
        .assert_status(202);
    assert_eq!(rx.wait_for(stale + 3).await[stale + 2].form()["To"], NUMBER);

    let done =
        app.post("/api/v1/me/phone/confirm", &json!({"code": new_code}), Some(&user.token)).await.assert_status(200);
    assert_eq!(done.str("phone"), OTHER);
    assert!(done.body.get("recovery_codes").is_none(), "2FA was already on");
    let phone = app.get("/api/v1/me/phone", Some(&user.token)).await.assert_status(200);
    assert_eq!(phone.str("masked"), "+1 ••• ••• ••23");
    let authenticators = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(authenticators.body.as_array().expect("list").len(), 1, "one phone per account");
    // Five codes went out this hour (SEC-35): the next sign-in code waits for the window.
    app.clock.advance(3600);
    let login_token = password_step(&app, &user).await;
    app.post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "sms"}), None)
        .await
        .assert_status(202);
    assert_eq!(rx.wait_for(stale + 4).await[stale + 3].form()["To"], OTHER);
}

each_backend!(removing_the_phone_needs_reauth_and_turns_its_methods_off);
async fn removing_the_phone_needs_reauth_and_turns_its_methods_off(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    add_phone(&app, &rx, &user, NUMBER).await;
    app.clock.advance(11 * 60);
    app.delete("/api/v1/me/phone", Some(&user.token)).await.assert_error(403, "reauth_required");
    app.clock.advance(-11 * 60);
    app.delete("/api/v1/me/phone", Some(&user.token)).await.assert_status(204);
    app.delete("/api/v1/me/phone", Some(&user.token)).await.assert_error(404, "not_found");
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
    // Without a phone the methods are unavailable.
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "authenticated");
}

each_backend!(codes_expire_after_ten_minutes);
async fn codes_expire_after_ten_minutes(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    add_phone(&app, &rx, &user, NUMBER).await;
    app.post("/api/v1/me/reauth/challenge", &json!({"method": "sms"}), Some(&user.token)).await.assert_status(202);
    let code = rx.code(2).await;
    app.clock.advance(10 * 60);
    app.post("/api/v1/me/reauth", &json!({"method": "sms", "code": code}), Some(&user.token))
        .await
        .assert_error(401, "invalid_code");
    app.post("/api/v1/me/reauth/challenge", &json!({"method": "sms"}), Some(&user.token)).await.assert_status(202);
    let code = rx.code(3).await;
    app.clock.advance(10 * 60 - 1);
    app.post("/api/v1/me/reauth", &json!({"method": "sms", "code": code}), Some(&user.token)).await.assert_status(204);
}

each_backend!(sec52_a_phone_as_first_factor_ends_the_enrolment_session);

async fn sec52_a_phone_as_first_factor_ends_the_enrolment_session(db: Db) {
    let rx = Receiver::start().await;
    let phone = PhoneProvider::Twilio {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: FROM.into(),
        base_url: rx.url.clone(),
    };
    let app = TestApp::spawn_providers(db, None, phone, |s| s.require_two_factor = true).await;
    let mut user = app.user().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    user.token = login.str("session_token");
    app.get("/api/v1/me/sessions", Some(&user.token)).await.assert_error(403, "enrollment_required");
    let done = add_phone(&app, &rx, &user, NUMBER).await;
    assert_eq!(done["phone"], NUMBER);
    assert_eq!(done["recovery_codes"].as_array().expect("codes").len(), 10);
    let new = done["session_token"].as_str().expect("a new session token").to_owned();
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me/sessions", Some(&new)).await.assert_status(200);
}
