//! Security keys (WebAuthn) as a second factor, driven by a software
//! authenticator that is not ours (`webauthn-authenticator-rs`'s
//! `SoftToken`): SEC-57 (challenges), SEC-58 (registration), SEC-59
//! (assertions).

use serde_json::{Value, json};
use twostep_testkit::{Db, Resp, TestApp, User, both_backends, each_backend};
use url::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse, UserVerificationPolicy};

each_backend!(
    sec59_a_sign_count_regression_is_refused_audited_and_mailed,
    sec59_a_sign_count_regression_is_flagged_and_accepted_by_default,
    a_passkey_sign_in_keeps_to_the_ip_allow_list,
    passkey_sign_in_off_refuses_the_routes_and_passkeys_stay_second_factors,
    sec58_the_operator_can_refuse_synced_keys,
    sec58_only_keys_attested_by_a_listed_ca_register,
    sec58_a_listed_makers_unlisted_model_is_refused,
);

both_backends!(
    sec58_a_key_is_registered_as_the_first_factor_used_to_sign_in_renamed_and_removed,
    sec57_a_ceremony_works_once,
    sec57_a_registration_expires_after_five_minutes,
    sec58_sec59_a_foreign_origin_is_refused,
    sec59_another_accounts_key_is_refused,
    sec59_wrong_assertions_count_on_the_throttle,
    re_auth_accepts_a_key,
    a_passkey_is_registered_discoverable_and_serves_as_a_second_factor,
    the_key_routes_are_in_the_openapi_document,
    sec58_a_credential_id_is_registered_to_one_account_only,
    a_passkey_alone_signs_in_once_and_a_security_key_does_not,
    a_disabled_account_cannot_sign_in_with_its_passkey,
    an_app_is_told_a_passkey_signed_in,
    a_burst_of_passkey_starts_from_one_address_stops_at_the_cap,
    sec57_one_answer_posted_in_a_burst_signs_in_once,
    sec57_one_registration_finished_in_a_burst_adds_one_key,
    sec58_synced_keys_register_by_default_and_are_listed_as_synced,
    sec58_an_organisation_refuses_synced_passkeys_for_its_members,
);

pub(crate) fn token() -> SoftToken {
    SoftToken::new(false).expect("soft token").0
}

/// The page origin a browser would use: an IP cannot be a relying-party
/// id, so the server serves keys on `localhost`.
pub(crate) fn origin(app: &TestApp) -> Url {
    Url::parse(&app.url.replace("127.0.0.1", "localhost")).expect("origin")
}

async fn post_to(app: &TestApp, base: &str, path: &str, body: &Value) -> Resp {
    Resp::from(app.http.post(format!("{base}{path}")).json(body).send().await.expect("request")).await
}

/// Begins a registration; returns its id and options.
async fn begin_registration(app: &TestApp, user: &User, kind: &str, name: &str) -> (String, CreationChallengeResponse) {
    let r = app
        .post("/api/v1/me/webauthn/registrations", &json!({"kind": kind, "name": name}), Some(&user.token))
        .await
        .assert_status(200);
    assert!(r.body["options"]["publicKey"]["challenge"].is_string(), "{}", r.text);
    (r.str("registration_id"), serde_json::from_value(r.body["options"].clone()).expect("options"))
}

async fn finish_registration(app: &TestApp, user: &User, id: &str, credential: &impl serde::Serialize) -> Resp {
    app.post(&format!("/api/v1/me/webauthn/registrations/{id}"), &json!({"credential": credential}), Some(&user.token))
        .await
}

/// Registers `key` to the user; returns the 201 body.
pub(crate) async fn register(app: &TestApp, user: &User, key: &mut SoftToken, name: &str) -> Value {
    let (id, options) = begin_registration(app, user, "security_key", name).await;
    let credential = key.do_registration(origin(app), options).expect("registration");
    finish_registration(app, user, &id, &credential).await.assert_status(201).body
}

/// Signs in with the password; returns the login token and the key's options.
async fn key_challenge(app: &TestApp, user: &User) -> (String, RequestChallengeResponse) {
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.body["status"], "second_factor_required");
    assert_eq!(login.body["methods"][0], "webauthn", "the strongest first: {}", login.text);
    let login_token = login.str("login_token");
    let c = app
        .post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "webauthn"}), None)
        .await
        .assert_status(200);
    (login_token, serde_json::from_value(c.body["options"].clone()).expect("options"))
}

async fn verify(app: &TestApp, login_token: &str, credential: &impl serde::Serialize) -> Resp {
    app.post(
        "/api/v1/login/verify",
        &json!({"login_token": login_token, "method": "webauthn", "credential": credential}),
        None,
    )
    .await
}

async fn sec58_a_key_is_registered_as_the_first_factor_used_to_sign_in_renamed_and_removed(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    let added = register(&app, &user, &mut key, "YubiKey 5C").await;
    assert_eq!(added["authenticator"]["type"], "webauthn");
    assert_eq!(added["authenticator"]["name"], "YubiKey 5C");
    assert_eq!(added["recovery_codes"].as_array().expect("codes: 2FA turned on").len(), 10);
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"], json!({"enabled": true, "methods": ["webauthn", "recovery_code"]}));

    // A ceremony begun on one instance finishes on another (SEC-57: state in the database).
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    let other = app.second_instance().await;
    let body = json!({"login_token": login_token, "method": "webauthn", "credential": assertion});
    let signed_in = post_to(&app, &other, "/api/v1/login/verify", &body).await.assert_status(200);
    assert_eq!(signed_in.body["status"], "authenticated");
    let session = signed_in.str("session_token");

    let list = app.get("/api/v1/me/authenticators", Some(&session)).await.assert_status(200);
    let listed = &list.body[0];
    assert_eq!(listed["type"], "webauthn");
    // A hardware key: device-bound, not synced.
    assert_eq!(listed["webauthn"], json!({"kind": "security_key", "backup_eligible": false, "synced": false}));
    assert!(listed["last_used_at"].is_string(), "{}", list.text);
    let id = listed["id"].as_str().expect("id").to_owned();
    let renamed = Resp::from(
        app.http
            .patch(format!("{}/api/v1/me/authenticators/{id}", app.url))
            .bearer_auth(&session)
            .json(&json!({"name": "Desk key"}))
            .send()
            .await
            .expect("patch"),
    )
    .await
    .assert_status(200);
    assert_eq!(renamed.body["name"], "Desk key");
    // Removed through the path every factor takes; the last one turns 2FA off.
    app.delete(&format!("/api/v1/me/authenticators/{id}"), Some(&session)).await.assert_status(204);
    let me = app.get("/api/v1/me", Some(&session)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
}

async fn sec57_a_ceremony_works_once(app: TestApp) {
    let user = app.user_with_totp().await;
    let mut key = token();
    // A registration's answer is taken once.
    let (id, options) = begin_registration(&app, &user, "security_key", "Key").await;
    let credential = key.do_registration(origin(&app), options).expect("registration");
    let added = finish_registration(&app, &user, &id, &credential).await.assert_status(201);
    assert!(added.body.get("recovery_codes").is_none(), "2FA was already on");
    finish_registration(&app, &user, &id, &credential).await.assert_error(401, "invalid_code");

    // A sign-in challenge is spent by any answer, even a wrong one.
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &json!({"id": "bogus"})).await.assert_error(401, "invalid_code");
    verify(&app, &login_token, &assertion).await.assert_error(401, "invalid_code");
    // A new challenge for the same sign-in works.
    let c = app
        .post("/api/v1/login/challenge", &json!({"login_token": login_token, "method": "webauthn"}), None)
        .await
        .assert_status(200);
    let options = serde_json::from_value(c.body["options"].clone()).expect("options");
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
}

async fn sec57_a_registration_expires_after_five_minutes(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    let (id, options) = begin_registration(&app, &user, "security_key", "Key").await;
    let credential = key.do_registration(origin(&app), options).expect("registration");
    app.clock.advance(301);
    // Re-auth first, so only the ceremony's age is judged.
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&user.token)).await.assert_status(204);
    finish_registration(&app, &user, &id, &credential).await.assert_error(401, "invalid_code");
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
}

async fn sec58_sec59_a_foreign_origin_is_refused(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    let phishing = Url::parse("https://twostep-login.example.net").expect("url");
    // The phishing page relays our options; the key signs its own origin.
    let (id, options) = begin_registration(&app, &user, "security_key", "Key").await;
    let credential = key.perform_register(phishing.clone(), options.public_key, 60_000).expect("registration");
    finish_registration(&app, &user, &id, &credential).await.assert_error(400, "invalid_credential");

    register(&app, &user, &mut key, "Key").await;
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.perform_auth(phishing, options.public_key, 60_000).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_error(401, "invalid_code");
}

async fn sec59_another_accounts_key_is_refused(app: TestApp) {
    let (alice, bob) = (app.user().await, app.user().await);
    let (mut alices_key, mut bobs_key) = (token(), token());
    register(&app, &alice, &mut alices_key, "Alice's key").await;
    register(&app, &bob, &mut bobs_key, "Bob's key").await;
    let (_, alices_options) = key_challenge(&app, &alice).await;
    // Alice's key answers Bob's challenge, pointed at her own credential.
    let (bob_login, mut options) = key_challenge(&app, &bob).await;
    options.public_key.allow_credentials = alices_options.public_key.allow_credentials;
    let assertion = alices_key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &bob_login, &assertion).await.assert_error(401, "invalid_code");
}

/// With `webauthn.refuse_sign_count_regression = true`.
async fn sec59_a_sign_count_regression_is_refused_audited_and_mailed(db: Db) {
    let (app, sink) =
        TestApp::spawn_with_mail_resolved(db, |r| r.settings.webauthn_refuse_sign_count_regression = true).await;
    let user = app.verified_user(&sink).await;
    let mut key = token();
    register(&app, &user, &mut key, "Key").await;
    // A copy of the key, made now: its count lags once the original signs.
    let mut clone = SoftToken::from_cbor(&key.to_cbor().expect("cbor")).expect("clone");
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = clone.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_error(401, "invalid_code");
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    let flagged =
        log.body.as_array().expect("log").iter().any(|e| {
            e["event"] == "webauthn_sign_count_regression" && e["success"] == false && e["details"] == "refused"
        });
    assert!(flagged, "{}", log.text);
    let mail = sink.wait_for_subject("may have been copied was refused").await;
    assert_eq!(mail["to"], json!([user.email]));
}

/// SEC-59 by default: flagged (audited, mailed), not refused, and the
/// stored count is not lowered to the copy's.
async fn sec59_a_sign_count_regression_is_flagged_and_accepted_by_default(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let user = app.verified_user(&sink).await;
    let mut key = token();
    register(&app, &user, &mut key, "Key").await;
    let mut clone = SoftToken::from_cbor(&key.to_cbor().expect("cbor")).expect("clone");
    for _ in 0..2 {
        let (login_token, options) = key_challenge(&app, &user).await;
        let assertion = key.do_authentication(origin(&app), options).expect("assertion");
        verify(&app, &login_token, &assertion).await.assert_status(200);
    }
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = clone.do_authentication(origin(&app), options).expect("assertion");
    let signed_in = verify(&app, &login_token, &assertion).await.assert_status(200);
    assert_eq!(signed_in.body["status"], "authenticated");
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    let flagged: Vec<_> = log
        .body
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["event"] == "webauthn_sign_count_regression")
        .cloned()
        .collect();
    assert_eq!(flagged.len(), 1, "{}", log.text);
    assert_eq!(
        (flagged[0]["success"].clone(), flagged[0]["details"].clone()),
        (json!(true), json!("accepted; flagged"))
    );
    let mail = sink.wait_for_subject("may have been copied was used").await;
    assert_eq!(mail["to"], json!([user.email]));
    // The copy's count (1) did not become the bar: it is flagged again,
    // and the original (now at 3) is not.
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = clone.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    let count = log.body.as_array().expect("log").iter().filter(|e| e["event"] == "webauthn_sign_count_regression");
    assert_eq!(count.count(), 2, "{}", log.text);

    // A passkey signing in alone: flagged and accepted alike.
    let other = app.verified_user(&sink).await;
    let mut passkey_key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &other, &mut passkey_key, "passkey").await;
    let mut copy = SoftToken::from_cbor(&passkey_key.to_cbor().expect("cbor")).expect("copy");
    let (challenge, answer) = passkey_answer(&app, &mut passkey_key, &credential_id, &handle).await;
    app.post(&format!("/api/v1/login/passkey/{challenge}"), &json!({"credential": answer}), None)
        .await
        .assert_status(200);
    let (challenge, answer) = passkey_answer(&app, &mut copy, &credential_id, &handle).await;
    app.post(&format!("/api/v1/login/passkey/{challenge}"), &json!({"credential": answer}), None)
        .await
        .assert_status(200);
    let log = app.get("/api/v1/me/security-log", Some(&other.token)).await.assert_status(200);
    assert!(log.body.as_array().expect("log").iter().any(|e| e["event"] == "webauthn_sign_count_regression"));
}

async fn sec59_wrong_assertions_count_on_the_throttle(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    register(&app, &user, &mut key, "Key").await;
    let (login_token, _) = key_challenge(&app, &user).await;
    // Counted like wrong codes: each says how many the sign-in still takes.
    for left in (0..5).rev() {
        let r = verify(&app, &login_token, &json!({"id": "bogus"})).await.assert_error(401, "invalid_code");
        assert_eq!(r.body["error"]["tries_left"], json!(left), "{}", r.body);
    }
    // A credential missing is a clear 400, not a 500 or a framework error.
    app.post("/api/v1/login/verify", &json!({"login_token": login_token, "method": "webauthn"}), None)
        .await
        .assert_error(400, "invalid_request");
    // The owner is not locked out: after the backoff, the key signs in again.
    app.clock.advance(1);
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
}

async fn re_auth_accepts_a_key(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    register(&app, &user, &mut key, "Key").await;
    app.clock.advance(11 * 60);
    // Past the window: adding a factor asks for re-auth.
    app.post(
        "/api/v1/me/webauthn/registrations",
        &json!({"kind": "security_key", "name": "Another"}),
        Some(&user.token),
    )
    .await
    .assert_error(403, "reauth_required");
    let c = app
        .post("/api/v1/me/reauth/challenge", &json!({"method": "webauthn"}), Some(&user.token))
        .await
        .assert_status(200);
    let options = serde_json::from_value(c.body["options"].clone()).expect("options");
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    let body = json!({"password": user.password, "method": "webauthn", "credential": assertion});
    app.post("/api/v1/me/reauth", &body, Some(&user.token)).await.assert_status(204);
    // Used once: the same answer does not prove it again.
    app.post("/api/v1/me/reauth", &body, Some(&user.token)).await.assert_error(401, "invalid_code");
    begin_registration(&app, &user, "security_key", "Another").await;
}

async fn a_passkey_is_registered_discoverable_and_serves_as_a_second_factor(app: TestApp) {
    let user = app.user().await;
    // A key that reports user verification (a PIN or biometric), as a passkey must.
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (id, options) = begin_registration(&app, &user, "passkey", "Laptop").await;
    let selection = serde_json::to_value(&options.public_key.authenticator_selection).expect("json");
    assert_eq!(selection["residentKey"], "required", "{selection}");
    assert_eq!(selection["userVerification"], "required", "{selection}");
    let options = resident_key_not_asked(options);
    let credential = key.do_registration(origin(&app), options.clone()).expect("registration");
    // A browser saying the credential is not discoverable is refused.
    let (refused_id, refused_options) = begin_registration(&app, &user, "passkey", "Laptop").await;
    let mut plain = serde_json::to_value(
        key.do_registration(origin(&app), resident_key_not_asked(refused_options)).expect("registration"),
    )
    .expect("json");
    plain["clientExtensionResults"] = json!({"credProps": {"rk": false}});
    finish_registration(&app, &user, &refused_id, &plain).await.assert_error(400, "invalid_credential");
    let added = finish_registration(&app, &user, &id, &credential).await.assert_status(201);
    assert_eq!(added.body["authenticator"]["name"], "Laptop");
    // One prompt offers the account's keys and passkeys alike.
    let mut other = token();
    register(&app, &user, &mut other, "Desk key").await;
    let (login_token, options) = key_challenge(&app, &user).await;
    assert_eq!(options.public_key.allow_credentials.len(), 2);
    let assertion = other.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
    // The passkey signs in with its user verification; without it, it is refused.
    let (login_token, options) = key_challenge(&app, &user).await;
    let mut unverified = SoftToken::from_cbor(&key.to_cbor().expect("cbor")).expect("copy");
    let assertion = unverified.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_error(401, "invalid_code");
    let (login_token, mut options) = key_challenge(&app, &user).await;
    // What a browser does when the key can verify its user (UV "preferred").
    options.public_key.user_verification = UserVerificationPolicy::Required;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
}

/// SoftToken keeps no resident keys, so it is asked for a plain one (what a
/// browser reports through `credProps` is what the server judges).
fn resident_key_not_asked(mut options: CreationChallengeResponse) -> CreationChallengeResponse {
    if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
        sel.resident_key = None;
    }
    options
}

async fn the_key_routes_are_in_the_openapi_document(app: TestApp) {
    let doc = app.get("/api/openapi.json", None).await.assert_status(200).body;
    for (path, method) in [
        ("/api/v1/me/webauthn/registrations", "post"),
        ("/api/v1/me/webauthn/registrations/{registration_id}", "post"),
        ("/api/v1/me/authenticators/{id}", "patch"),
        ("/api/v1/orgs/{id}/passkey-policy", "put"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from OpenAPI");
    }
    // The operator settings' refusals are documented where they happen.
    let described = |path: &str, status: &str| {
        doc["paths"][path]["post"]["responses"][status]["description"].as_str().unwrap_or_default().to_owned()
    };
    let finish = described("/api/v1/me/webauthn/registrations/{registration_id}", "400");
    assert!(finish.contains("synced_key_refused") && finish.contains("attestation_refused"), "{finish}");
    assert!(described("/api/v1/login/passkey", "403").contains("passkey_sign_in_disabled"));
    assert!(described("/api/v1/login/passkey/{challenge_id}", "403").contains("passkey_sign_in_disabled"));
    let org = doc["components"]["schemas"]["OrgDetail"]["properties"].as_object().expect("OrgDetail");
    assert!(org.contains_key("refuse_synced_passkeys"), "{org:?}");
    let verify = doc["components"]["schemas"]["VerifyRequest"]["properties"].as_object().expect("VerifyRequest");
    assert!(verify.contains_key("credential"), "{verify:?}");
}

/// SEC-58: a credential id already registered (to anyone) is refused, in
/// the store's one transaction: nothing of the second key is kept.
async fn sec58_a_credential_id_is_registered_to_one_account_only(app: TestApp) {
    use twostep_domain::factors::store::AuthenticatorRecord;
    use twostep_domain::factors::webauthn::store::{AddKeyOutcome, WebauthnCredentialRecord, WebauthnStore};
    use twostep_domain::ids::{AccountId, AuthenticatorId};
    use twostep_domain::time::Timestamp;

    let store = twostep_store::SqlStore::connect(&app.database_url).await.expect("connect");
    let mut outcomes = Vec::new();
    let mut owners = Vec::new();
    for n in 0..2 {
        let user = app.user().await;
        let account = AccountId::from_stored(app.get("/api/v1/me", Some(&user.token)).await.str("id"));
        let id = AuthenticatorId::from_stored(format!("key-{n}"));
        let authenticator = AuthenticatorRecord {
            id: id.clone(),
            account_id: account.clone(),
            kind: "webauthn".into(),
            name: "Key".into(),
            secret_sealed: Vec::new(),
            last_step: 0,
            created_at: Timestamp::from_secs(1),
            last_used_at: None,
        };
        let credential = WebauthnCredentialRecord {
            authenticator_id: id,
            account_id: account.clone(),
            credential_id: vec![7; 16],
            kind: "security_key".into(),
            credential: "{}".into(),
            sign_count: 0,
            backup_eligible: false,
            backup_state: false,
        };
        outcomes.push(store.add_webauthn_credential(&authenticator, &credential, &[]).await.expect("add"));
        owners.push((user, account));
    }
    assert_eq!(outcomes, vec![AddKeyOutcome::Added { first: true }, AddKeyOutcome::Taken]);
    let (second, account) = &owners[1];
    assert!(store.webauthn_credentials(account).await.expect("read").is_empty());
    let listed = app.get("/api/v1/me/authenticators", Some(&second.token)).await.assert_status(200);
    assert_eq!(listed.body, json!([]), "the refused key's authenticator was rolled back");
}

/// A passkey registered, with what a passkey sign-in needs to play the
/// browser: the credential id and the user handle the server gave it.
pub(crate) async fn passkey(app: &TestApp, user: &User, key: &mut SoftToken, kind: &str) -> (Value, Value) {
    let (id, options) = begin_registration(app, user, kind, "Laptop").await;
    let handle = serde_json::to_value(&options).expect("json")["publicKey"]["user"]["id"].clone();
    let credential = key.do_registration(origin(app), resident_key_not_asked(options)).expect("registration");
    finish_registration(app, user, &id, &credential).await.assert_status(201);
    (serde_json::to_value(&credential).expect("json")["id"].clone(), handle)
}

/// A passkey sign-in's answer. SoftToken keeps no resident keys, so it is
/// pointed at its credential and its answer given the user handle a
/// resident key would return (neither is signed; the server judges the rest).
pub(crate) async fn passkey_answer(
    app: &TestApp,
    key: &mut SoftToken,
    credential_id: &Value,
    handle: &Value,
) -> (String, Value) {
    let begun = app.post("/api/v1/login/passkey", &json!({}), None).await.assert_status(200);
    let mut options: RequestChallengeResponse = serde_json::from_value(begun.body["options"].clone()).expect("options");
    assert!(options.public_key.allow_credentials.is_empty(), "the key names the account");
    assert_eq!(options.public_key.user_verification, UserVerificationPolicy::Required);
    options.public_key.allow_credentials =
        vec![serde_json::from_value(json!({"type": "public-key", "id": credential_id})).expect("allow")];
    let assertion = key.do_authentication(origin(app), options).expect("assertion");
    let mut answer = serde_json::to_value(&assertion).expect("json");
    answer["response"]["userHandle"] = handle.clone();
    (begun.str("challenge_id"), answer)
}

async fn a_passkey_alone_signs_in_once_and_a_security_key_does_not(app: TestApp) {
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    let path = format!("/api/v1/login/passkey/{challenge}");
    let signed_in = app.post(&path, &json!({"credential": answer}), None).await.assert_status(200);
    assert_eq!(signed_in.body["status"], "authenticated");
    let session = signed_in.str("session_token");
    app.get("/api/v1/me", Some(&session)).await.assert_status(200);
    // Both factors are proven: adding a factor needs no further re-auth.
    begin_registration(&app, &User { token: session, ..user_clone(&user) }, "security_key", "Another").await;
    // SEC-57: once.
    app.post(&path, &json!({"credential": answer}), None).await.assert_error(401, "invalid_credentials");
    // Another account's handle on this key is refused.
    let (challenge, mut answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    answer["response"]["userHandle"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    let path = format!("/api/v1/login/passkey/{challenge}");
    app.post(&path, &json!({"credential": answer}), None).await.assert_error(401, "invalid_credentials");

    // A security key is a second factor only: it cannot sign in alone.
    let other = app.user().await;
    let mut plain = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &other, &mut plain, "security_key").await;
    let (challenge, answer) = passkey_answer(&app, &mut plain, &credential_id, &handle).await;
    let path = format!("/api/v1/login/passkey/{challenge}");
    app.post(&path, &json!({"credential": answer}), None).await.assert_error(401, "invalid_credentials");
}

fn user_clone(u: &User) -> User {
    User {
        email: u.email.clone(),
        password: u.password.clone(),
        token: u.token.clone(),
        secret: Vec::new(),
        authenticator_id: String::new(),
        recovery_codes: Vec::new(),
    }
}

async fn a_disabled_account_cannot_sign_in_with_its_passkey(app: TestApp) {
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let (admin, _) = crate::admin::admin(&app).await;
    let id = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200).str("id");
    app.post(&format!("/api/v1/admin/users/{id}/disable"), &json!({}), Some(&admin.token)).await.assert_status(204);
    let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    app.post(&format!("/api/v1/login/passkey/{challenge}"), &json!({"credential": answer}), None)
        .await
        .assert_error(401, "invalid_credentials");
}

/// SEC-61: the allow-list applies to a passkey as to a password.
async fn a_passkey_sign_in_keeps_to_the_ip_allow_list(db: Db) {
    const OFFICE: &str = "198.51.100.7";
    let app = TestApp::spawn_with_resolved(db, |r| {
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1/32").expect("ranges");
    })
    .await;
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let list = json!({"entries": [{"cidr": "198.51.100.0/24", "label": "Office"}]});
    let put = app.http.put(format!("{}/api/v1/me/ip-allowlist", app.url)).header("x-forwarded-for", OFFICE);
    Resp::from(put.bearer_auth(&user.token).json(&list).send().await.expect("put")).await.assert_status(200);
    for (ip, status) in [("203.0.113.9", 401), (OFFICE, 200)] {
        let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
        let req = app.http.post(format!("{}/api/v1/login/passkey/{challenge}", app.url)).header("x-forwarded-for", ip);
        let r = Resp::from(req.json(&json!({"credential": answer})).send().await.expect("post")).await;
        assert_eq!(r.status.as_u16(), status, "from {ip}: {}", r.text);
    }
}

/// OpenID Connect (issue 17): a passkey session reaches an app as two
/// factors with no password, `amr` saying so (RFC 8176 `hwk`, `user`).
async fn an_app_is_told_a_passkey_signed_in(app: TestApp) {
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    let path = format!("/api/v1/login/passkey/{challenge}");
    let session = app.post(&path, &json!({"credential": answer}), None).await.assert_status(200).str("session_token");
    let client = crate::oidc::register(&app, &["--require-two-factor"]).await;
    let (verifier, pkce_challenge) = crate::oidc::pkce();
    let code = crate::oidc::code_for(&app, &session, &client, &pkce_challenge).await;
    let tokens = crate::oidc::exchange(&app, &client, &code, &verifier).await.assert_status(200);
    let id = crate::oidc::claims(&tokens.str("id_token"));
    assert_eq!(id["acr"], "urn:twostep:2fa");
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]));
}

/// Anyone may begin a passkey sign-in, and each stores a ceremony: 100
/// begun together from one address (across two instances on PostgreSQL)
/// get exactly the per-minute cap of 30, the rest 429 with a wait.
async fn a_burst_of_passkey_starts_from_one_address_stops_at_the_cap(app: TestApp) {
    let bases = app.instances().await;
    let rs =
        crate::burst::burst(&bases, 100, |_, c, base| c.post(format!("{base}/api/v1/login/passkey")).json(&json!({})))
            .await;
    assert_eq!(crate::burst::count(&rs, 200), 30, "{:?}", crate::burst::tally(&rs));
    assert_eq!(crate::burst::count(&rs, 429), 70, "{:?}", crate::burst::tally(&rs));
    assert!(rs.iter().filter(|r| r.status == 429).all(|r| !r.header("retry-after").is_empty()));
    // A forwarded-for header does not make a new address (no trusted proxy).
    let other = app.http.post(format!("{}/api/v1/login/passkey", app.url)).header("x-forwarded-for", "192.0.2.7");
    let other = Resp::from(other.json(&json!({})).send().await.expect("start")).await;
    assert_eq!(other.status, 429);
    // A minute later the address may begin again.
    app.clock.advance(61);
    app.post("/api/v1/login/passkey", &json!({}), None).await.assert_status(200);
}

/// `webauthn.passkey_sign_in = false`: both routes refuse, saying why; a
/// passkey is still registered and still proves the second factor.
async fn passkey_sign_in_off_refuses_the_routes_and_passkeys_stay_second_factors(db: Db) {
    let app = TestApp::spawn_with(db, |s| s.webauthn_passkey_sign_in = false).await;
    let r = app.post("/api/v1/login/passkey", &json!({}), None).await.assert_error(403, "passkey_sign_in_disabled");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("password"), "{}", r.text);
    app.post("/api/v1/login/passkey/anything", &json!({"credential": {}}), None)
        .await
        .assert_error(403, "passkey_sign_in_disabled");
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    passkey(&app, &user, &mut key, "passkey").await;
    let (login_token, mut options) = key_challenge(&app, &user).await;
    options.public_key.user_verification = UserVerificationPolicy::Required;
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);
}

/// The registration as a synced passkey would give it: backup-eligible
/// (BE) and backed up (BS). Such a key attests nothing (`none`), and then
/// nothing signs the flags, so the soft key's answer is rewritten so.
pub(crate) fn as_synced(credential: &impl serde::Serialize) -> Value {
    rewritten_attestation(credential, 0x08 | 0x10)
}

/// The answer with `none` attestation and `flags` added to its
/// authenticator data (byte 32, after the rpIdHash).
fn rewritten_attestation(credential: &impl serde::Serialize, flags: u8) -> Value {
    use data_encoding::BASE64URL_NOPAD;
    use serde_cbor_2::Value as Cbor;
    let mut credential = serde_json::to_value(credential).expect("json");
    let raw = credential["response"]["attestationObject"].as_str().expect("attestationObject").to_owned();
    let bytes = BASE64URL_NOPAD.decode(raw.trim_end_matches('=').as_bytes()).expect("base64url");
    let Cbor::Map(mut object) = serde_cbor_2::from_slice(&bytes).expect("cbor") else { panic!("not a map") };
    if let Some(Cbor::Bytes(auth_data)) = object.get_mut(&Cbor::Text("authData".into())) {
        auth_data[32] |= flags;
    }
    object.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
    object.insert(Cbor::Text("attStmt".into()), Cbor::Map(std::collections::BTreeMap::new()));
    let bytes = serde_cbor_2::to_vec(&Cbor::Map(object)).expect("cbor");
    credential["response"]["attestationObject"] = BASE64URL_NOPAD.encode(&bytes).into();
    credential
}

async fn sec58_synced_keys_register_by_default_and_are_listed_as_synced(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    let (id, options) = begin_registration(&app, &user, "security_key", "Phone").await;
    let credential = as_synced(&key.do_registration(origin(&app), options).expect("registration"));
    finish_registration(&app, &user, &id, &credential).await.assert_status(201);
    let list = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(list.body[0]["webauthn"], json!({"kind": "security_key", "backup_eligible": true, "synced": true}));
}

/// `webauthn.allow_synced = false`: a backup-eligible credential of either
/// kind is refused for everyone, a device-bound one is taken.
async fn sec58_the_operator_can_refuse_synced_keys(db: Db) {
    let app = TestApp::spawn_with(db, |s| s.webauthn_allow_synced = false).await;
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    for kind in ["security_key", "passkey"] {
        let (id, options) = begin_registration(&app, &user, kind, "Phone").await;
        let options = resident_key_not_asked(options);
        let credential = as_synced(&key.do_registration(origin(&app), options).expect("registration"));
        let r = finish_registration(&app, &user, &id, &credential).await.assert_error(400, "synced_key_refused");
        assert!(r.body["error"]["message"].as_str().expect("message").contains("on this server"), "{}", r.text);
    }
    let listed = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(listed.body, json!([]), "nothing of the refused keys is kept");
    // Only the backup flags decide: the same answer without them is taken.
    let (id, options) = begin_registration(&app, &user, "security_key", "Desk key").await;
    let credential = rewritten_attestation(&key.do_registration(origin(&app), options).expect("registration"), 0);
    finish_registration(&app, &user, &id, &credential).await.assert_status(201);
}

/// An organisation's owner refuses synced passkeys for its members; the
/// rule reaches its members' registrations only.
async fn sec58_an_organisation_refuses_synced_passkeys_for_its_members(app: TestApp) {
    let owner = app.user().await;
    let org = app.post("/api/v1/orgs", &json!({"name": "Initech"}), Some(&owner.token)).await.assert_status(201);
    assert_eq!(org.body["refuse_synced_passkeys"], false);
    let org = org.str("id");
    let path = format!("/api/v1/orgs/{org}/passkey-policy");
    let set = app.put(&path, &json!({"refuse_synced_passkeys": true}), Some(&owner.token)).await.assert_status(200);
    assert_eq!(set.body, json!({"refuse_synced_passkeys": true}));
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    assert_eq!(shown.body["refuse_synced_passkeys"], true);
    let mine = app.get("/api/v1/orgs", Some(&owner.token)).await.assert_status(200);
    assert_eq!(mine.body[0]["refuse_synced_passkeys"], true);
    // A non-member cannot set it, nor learn the organisation exists.
    let outsider = app.user().await;
    app.put(&path, &json!({"refuse_synced_passkeys": false}), Some(&outsider.token))
        .await
        .assert_error(404, "not_found");
    app.put(&path, &json!({"refuse_synced_passkeys": "yes"}), Some(&owner.token)).await.assert_status(400);

    let mut key = token();
    let (id, options) = begin_registration(&app, &owner, "security_key", "Phone").await;
    let credential = as_synced(&key.do_registration(origin(&app), options).expect("registration"));
    let r = finish_registration(&app, &owner, &id, &credential).await.assert_error(400, "synced_key_refused");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("Initech"), "{}", r.text);
    // A device-bound key is fine for the member; a synced one for anyone else.
    register(&app, &owner, &mut key, "Desk key").await;
    let (id, options) = begin_registration(&app, &outsider, "security_key", "Phone").await;
    let credential = as_synced(&token().do_registration(origin(&app), options).expect("registration"));
    finish_registration(&app, &outsider, &id, &credential).await.assert_status(201);
    // Turned off, members may register synced passkeys again.
    app.put(&path, &json!({"refuse_synced_passkeys": false}), Some(&owner.token)).await.assert_status(200);
    let (id, options) = begin_registration(&app, &owner, "security_key", "Phone").await;
    let credential = as_synced(&token().do_registration(origin(&app), options).expect("registration"));
    finish_registration(&app, &owner, &id, &credential).await.assert_status(201);
}

/// `SoftToken`'s model, as its attestation names it.
const SOFT_TOKEN_AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";

/// A soft key whose maker's CA is configured, and the rule trusting it for `aaguid`.
fn attested_key(aaguid: &str) -> (SoftToken, twostep_domain::factors::webauthn::AttestationRule) {
    use crypto_glue::traits::{EncodePem, LineEndingPem};
    let (key, ca) = SoftToken::new(true).expect("soft token");
    let pem = ca.to_pem(LineEndingPem::LF).expect("pem");
    let rule =
        twostep_domain::factors::webauthn::AttestationRule::new(&[aaguid.to_owned()], &[("softtoken.pem".into(), pem)])
            .expect("rule");
    (key, rule)
}

/// SEC-58 with `webauthn.aaguids`: registration asks for attestation and
/// takes only a key whose attestation chains to a configured CA; another
/// maker's key, or the right one with its attestation stripped, is refused.
async fn sec58_only_keys_attested_by_a_listed_ca_register(db: Db) {
    let (mut listed, rule) = attested_key(SOFT_TOKEN_AAGUID);
    let app = TestApp::spawn_with(db, |s| s.webauthn_attestation = Some(rule)).await;
    let user = app.user().await;
    let (id, options) = begin_registration(&app, &user, "security_key", "Listed").await;
    assert_eq!(serde_json::to_value(&options).expect("json")["publicKey"]["attestation"], "direct");
    let credential = listed.do_registration(origin(&app), options).expect("registration");
    finish_registration(&app, &user, &id, &credential).await.assert_status(201);
    // And it signs in as usual.
    let (login_token, options) = key_challenge(&app, &user).await;
    let assertion = listed.do_authentication(origin(&app), options).expect("assertion");
    verify(&app, &login_token, &assertion).await.assert_status(200);

    // Another maker: the same model id, but its CA is not configured.
    let mut stranger = token();
    let (id, options) = begin_registration(&app, &user, "security_key", "Stranger").await;
    let credential = stranger.do_registration(origin(&app), options).expect("registration");
    finish_registration(&app, &user, &id, &credential).await.assert_error(400, "attestation_refused");
    // The listed maker's key with no attestation at all (`none`).
    let (id, options) = begin_registration(&app, &user, "security_key", "Unattested").await;
    let credential = rewritten_attestation(&listed.do_registration(origin(&app), options).expect("registration"), 0);
    finish_registration(&app, &user, &id, &credential).await.assert_error(400, "attestation_refused");
    // A synced passkey cannot be attested, so it is refused too.
    let (id, options) = begin_registration(&app, &user, "passkey", "Phone").await;
    let credential =
        as_synced(&listed.do_registration(origin(&app), resident_key_not_asked(options)).expect("registration"));
    finish_registration(&app, &user, &id, &credential).await.assert_error(400, "attestation_refused");
    // An attested passkey of the listed model is taken.
    let (id, options) = begin_registration(&app, &user, "passkey", "Laptop").await;
    assert_eq!(serde_json::to_value(&options).expect("json")["publicKey"]["attestation"], "direct");
    let credential = listed.do_registration(origin(&app), resident_key_not_asked(options)).expect("registration");
    finish_registration(&app, &user, &id, &credential).await.assert_status(201);
    let listed = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(listed.body.as_array().expect("list").len(), 2, "{}", listed.text);
}

/// The right maker's CA, but a model not on the list.
async fn sec58_a_listed_makers_unlisted_model_is_refused(db: Db) {
    let (mut key, rule) = attested_key("cb69481e-8ff7-4039-93ec-0a2729a154a8");
    let app = TestApp::spawn_with(db, |s| s.webauthn_attestation = Some(rule)).await;
    let user = app.user().await;
    let (id, options) = begin_registration(&app, &user, "security_key", "Other model").await;
    let credential = key.do_registration(origin(&app), options).expect("registration");
    finish_registration(&app, &user, &id, &credential).await.assert_error(400, "attestation_refused");
}

/// SEC-57 under a burst: one passkey answer posted 60 times together
/// (across two instances on PostgreSQL) signs in exactly once; the
/// ceremony is taken in one statement, so the rest meet a spent one.
async fn sec57_one_answer_posted_in_a_burst_signs_in_once(app: TestApp) {
    let user = app.user().await;
    let mut key = SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    let bases = app.instances().await;
    let body = json!({"credential": answer});
    let rs = crate::burst::burst(&bases, 60, move |_, c, base| {
        c.post(format!("{base}/api/v1/login/passkey/{challenge}")).json(&body)
    })
    .await;
    assert_eq!(crate::burst::count(&rs, 200), 1, "{:?}", crate::burst::tally(&rs));
    assert_eq!(crate::burst::count(&rs, 401), 59, "{:?}", crate::burst::tally(&rs));
}

/// SEC-57 under a burst: a registration finished 50 times together with
/// the same answer adds one key and hands out one set of recovery codes.
async fn sec57_one_registration_finished_in_a_burst_adds_one_key(app: TestApp) {
    let user = app.user().await;
    let (id, options) = begin_registration(&app, &user, "security_key", "YubiKey").await;
    let credential = token().do_registration(origin(&app), options).expect("registration");
    let bases = app.instances().await;
    let body = json!({"credential": credential});
    let bearer = format!("Bearer {}", user.token);
    let rs = crate::burst::burst(&bases, 50, move |_, c, base| {
        c.post(format!("{base}/api/v1/me/webauthn/registrations/{id}")).header("authorization", &bearer).json(&body)
    })
    .await;
    assert_eq!(crate::burst::count(&rs, 201), 1, "{:?}", crate::burst::tally(&rs));
    // The rest meet a spent registration (401), or, once the winner turned
    // 2FA on, a session whose proof no longer covers a change (403).
    let refused = crate::burst::count(&rs, 401) + crate::burst::count(&rs, 403);
    assert_eq!(refused, 49, "{:?}", crate::burst::tally(&rs));
    let listed = app.get("/api/v1/me/authenticators", Some(&user.token)).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{}", listed.text);
}
