//! Security keys and passkeys through the pages' own forms, with a software
//! authenticator playing the browser's part of app.js: the options the page
//! carries go to the key, and its answer is posted back as the form would
//! (issue 16, item 1 and 2 in the browser; e2e/webauthn.test.mjs runs the
//! same in Chromium).

use reqwest::header::{COOKIE, LOCATION, ORIGIN};
use twostep_testkit::{Db, TestApp, both_backends, csrf_of, each_backend};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

use crate::webauthn::{as_synced, origin, passkey, passkey_answer, register, token};

both_backends!(
    the_security_page_adds_a_key_from_the_browsers_answer,
    the_sign_in_pages_take_the_keys_answer,
    the_sign_in_page_signs_in_with_a_passkey_alone,
    a_key_is_renamed_by_its_owner_only,
    an_owner_refuses_synced_passkeys_on_the_organisations_page,
    the_sweeper_deletes_dead_ceremonies,
    localhost_on_the_same_port_is_our_origin_and_nothing_else_is,
);

each_backend!(without_password_less_sign_in_the_page_offers_no_passkey, the_key_page_says_a_synced_key_is_refused_here);

/// An attribute's value as the browser reads it (askama escapes HTML).
fn attribute(html: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    let raw = html[at..].split('"').next().expect("value");
    raw.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn hidden(html: &str, name: &str) -> String {
    attribute(html.split(&format!("name=\"{name}\"")).nth(1).unwrap_or_default(), "value")
}

/// A registration begun on the Security page as the person would: the
/// name page, then its form; what the next page carries for app.js.
struct Begun {
    csrf: String,
    kind: &'static str,
    registration: String,
    options: CreationChallengeResponse,
}

async fn begin_on_page(app: &TestApp, token: &str, kind: &'static str) -> Begun {
    let (status, _, page) = app.page(&format!("/security/keys/new?kind={kind}"), Some(token)).await;
    assert_eq!(status, 200, "{page}");
    let csrf = csrf_of(&page);
    let (status, _, page) =
        app.form_post("/security/keys/new", token, &[("csrf", &csrf), ("kind", kind), ("name", "YubiKey 5C")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-webauthn-auto"), "the ceremony starts by itself");
    let options =
        serde_json::from_str(&attribute(&page, "data-webauthn-create")).expect("the page carries the options");
    Begun { csrf, kind, registration: hidden(&page, "registration_id"), options }
}

/// app.js's post of the browser's answer (empty: none came).
async fn finish_on_page(app: &TestApp, token: &str, begun: &Begun, credential: &str) -> (u16, String, String) {
    let form = [
        ("csrf", begun.csrf.as_str()),
        ("kind", begun.kind),
        ("registration_id", begun.registration.as_str()),
        ("credential", credential),
    ];
    app.form_post("/security/keys/finish", token, &form).await
}

async fn the_security_page_adds_a_key_from_the_browsers_answer(app: TestApp) {
    let user = app.user().await;
    let begun = begin_on_page(&app, &user.token, "security_key").await;
    // No answer (no script, or a cancelled ceremony): said, and nothing spent.
    let (status, _, page) = finish_on_page(&app, &user.token, &begun, "").await;
    assert_eq!(status, 400);
    assert!(page.contains("gave no answer"), "{page}");
    let credential = token().do_registration(origin(&app), begun.options.clone()).expect("registration");
    let answer = serde_json::to_string(&credential).expect("json");
    let (status, _, page) = finish_on_page(&app, &user.token, &begun, &answer).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Two-factor authentication is on"), "the first factor shows the recovery codes");
    assert_eq!(page.matches("data-testid=\"recovery-code\"").count(), 10);
    // The key is the account's: signing in asks for it first.
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.body["methods"][0], "webauthn", "{}", login.text);
}

/// A browser of its own: cookies kept, no redirects followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn the_sign_in_pages_take_the_keys_answer(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    register(&app, &user, &mut key, "YubiKey").await;
    let b = browser();
    let page = b.get(format!("{}/login", app.url)).send().await.expect("login").text().await.expect("text");
    let csrf = csrf_of(&page);
    let r = b
        .post(format!("{}/login", app.url))
        .header(ORIGIN, &app.url)
        .form(&[("csrf", csrf.as_str()), ("email", &user.email), ("password", &user.password)])
        .send()
        .await
        .expect("password");
    assert_eq!(r.headers()[LOCATION], "/login/verify");
    // The key's page: its options, and the other ways under it.
    let page = b.get(format!("{}/login/verify", app.url)).send().await.expect("verify").text().await.expect("text");
    assert!(page.contains("Use your security key"), "{page}");
    assert!(page.contains("method=recovery_code"), "a recovery code is offered: {page}");
    let options: RequestChallengeResponse =
        serde_json::from_str(&attribute(&page, "data-webauthn-get")).expect("the page carries the options");
    let assertion = key.do_authentication(origin(&app), options).expect("assertion");
    let post = |code: String| {
        let b = b.clone();
        let url = format!("{}/login/verify", app.url);
        let csrf = csrf_of(&page);
        let origin = app.url.clone();
        async move {
            b.post(url)
                .header(ORIGIN, origin)
                .form(&[("csrf", csrf.as_str()), ("method", "webauthn"), ("code", &code)])
                .send()
                .await
                .expect("verify")
        }
    };
    // A tampered answer is refused on the page, which asks again with a fresh challenge.
    let mut tampered = serde_json::to_value(&assertion).expect("json");
    tampered["response"]["signature"] = serde_json::json!("AAAA");
    let r = post(tampered.to_string()).await;
    assert_eq!(r.status(), 401);
    let again = r.text().await.expect("text");
    assert!(again.contains("That security key wasn"), "{again}");
    let fresh: RequestChallengeResponse =
        serde_json::from_str(&attribute(&again, "data-webauthn-get")).expect("options");
    assert!(!again.contains("data-webauthn-auto"), "after a refusal the person starts the key again");
    let assertion = key.do_authentication(origin(&app), fresh).expect("assertion");
    let r = post(serde_json::to_string(&assertion).expect("json")).await;
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()[LOCATION], "/security");
    let session = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("twostep_session=").and_then(|c| c.split(';').next()).map(str::to_owned))
        .expect("a session cookie");
    // Re-auth takes the key too, on its form.
    let (status, _, page) = app.page("/reauth?method=webauthn", Some(&session)).await;
    assert_eq!(status, 303, "a fresh sign-in needs no re-auth: {page}");
    let r = b
        .get(format!("{}/security", app.url))
        .header(COOKIE, format!("twostep_session={session}"))
        .send()
        .await
        .expect("security");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("text").contains("data-testid=\"key\""), "the key is listed");
}

async fn the_sign_in_page_signs_in_with_a_passkey_alone(app: TestApp) {
    let user = app.user().await;
    let mut key = webauthn_authenticator_rs::softtoken::SoftToken::new(true).expect("soft token").0;
    let (credential_id, handle) = passkey(&app, &user, &mut key, "passkey").await;
    let b = browser();
    let page = b.get(format!("{}/login", app.url)).send().await.expect("login").text().await.expect("text");
    assert!(page.contains("Sign in with a passkey") && page.contains("username webauthn"), "{page}");
    let csrf = csrf_of(&page);
    let post = |challenge: String, credential: String| {
        let b = b.clone();
        let url = format!("{}/login/passkey", app.url);
        let (csrf, origin) = (csrf.clone(), app.url.clone());
        async move {
            b.post(url)
                .header(ORIGIN, origin)
                .form(&[("csrf", csrf.as_str()), ("challenge_id", &challenge), ("credential", &credential)])
                .send()
                .await
                .expect("passkey")
        }
    };
    let r = post("nope".into(), String::new()).await;
    assert_eq!(r.status(), 400, "no answer at all");
    let (challenge, answer) = passkey_answer(&app, &mut key, &credential_id, &handle).await;
    let r = post(challenge.clone(), answer.to_string()).await;
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()[LOCATION], "/security");
    // SEC-57: the challenge is spent; the refusal says nothing of why.
    let r = post(challenge, answer.to_string()).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("text").contains("That passkey wasn"));
}

async fn a_key_is_renamed_by_its_owner_only(app: TestApp) {
    let user = app.user().await;
    let other = app.user().await;
    let mut key = token();
    let added = register(&app, &user, &mut key, "YubiKey").await;
    let id = added["authenticator"]["id"].as_str().expect("id").to_owned();
    let path = format!("/security/keys/{id}/rename");
    let (status, _, _) = app.page(&path, Some(&other.token)).await;
    assert_eq!(status, 404, "another account's key is not found");
    let (status, _, page) = app.page(&path, Some(&user.token)).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&page);
    let (status, _, page) = app.form_post(&path, &user.token, &[("csrf", &csrf), ("name", &"x".repeat(65))]).await;
    assert_eq!(status, 400, "{page}");
    let (status, location, _) = app.form_post(&path, &user.token, &[("csrf", &csrf), ("name", "Blue key")]).await;
    assert_eq!((status, location.as_str()), (303, "/security?notice=key_renamed"));
    let list = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(list.body[0]["name"], "Blue key");
}

async fn an_owner_refuses_synced_passkeys_on_the_organisations_page(app: TestApp) {
    let owner = app.user_with_totp().await;
    let org = app.post("/api/v1/orgs", &serde_json::json!({"name": "Acme"}), Some(&owner.token)).await;
    let id = org.assert_status(201).str("id");
    let path = format!("/orgs/{id}");
    let (status, _, page) = app.page(&path, Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Refuse synced passkeys"), "{page}");
    let csrf = csrf_of(&page);
    let policy = format!("/orgs/{id}/passkey-policy");
    let (status, location, _) = app.form_post(&policy, &owner.token, &[("csrf", &csrf), ("refuse", "true")]).await;
    assert_eq!((status, location.as_str()), (303, format!("{path}?notice=synced_refused").as_str()));
    let shown = app.get(&format!("/api/v1/orgs/{id}"), Some(&owner.token)).await.assert_status(200);
    assert_eq!(shown.body["refuse_synced_passkeys"], true, "{}", shown.text);
    let (_, _, page) = app.page(&path, Some(&owner.token)).await;
    assert!(page.contains("Allow synced passkeys"), "the button turns it back: {page}");
}

async fn without_password_less_sign_in_the_page_offers_no_passkey(db: Db) {
    let app = TestApp::spawn_with(db, |s| s.webauthn_passkey_sign_in = false).await;
    let (status, _, page) = app.page("/login", None).await;
    assert_eq!(status, 200);
    assert!(!page.contains("Sign in with a passkey") && !page.contains("webauthn\""), "{page}");
}

async fn ceremonies(app: &TestApp) -> i64 {
    use sqlx::Row;
    let mut raw = app.raw().await;
    sqlx::query("SELECT COUNT(*) FROM webauthn_ceremonies").fetch_one(&mut raw).await.expect("count").get(0)
}

/// Each factor sweeps what it keeps for a while (`Factor::sweep`): a
/// passkey ceremony nobody finished is gone once the hourly sweep runs.
async fn the_sweeper_deletes_dead_ceremonies(app: TestApp) {
    app.post("/api/v1/login/passkey", &serde_json::json!({}), None).await.assert_status(200);
    assert_eq!(ceremonies(&app).await, 1);
    app.clock.advance(3_601);
    for _ in 0..100 {
        if ceremonies(&app).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the expired ceremony was not swept");
}

/// The operator refuses synced keys (`webauthn.allow_synced = false`): the
/// page says so in the domain's words, and asks again.
async fn the_key_page_says_a_synced_key_is_refused_here(db: Db) {
    let app = TestApp::spawn_with(db, |s| s.webauthn_allow_synced = false).await;
    let user = app.user().await;
    let begun = begin_on_page(&app, &user.token, "security_key").await;
    let credential = token().do_registration(origin(&app), begun.options.clone()).expect("registration");
    let answer = as_synced(&credential).to_string();
    let (status, _, page) = finish_on_page(&app, &user.token, &begun, &answer).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Synced passkeys are not accepted on this server;"), "{page}");
    assert!(page.contains("id=\"key-new-form\""), "the name form again: {page}");
    let listed = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(listed.body, serde_json::json!([]));
}

/// Keys need `http://localhost:PORT` for a loopback server, so its pages
/// take that origin as their own: on the same port only, plain http only.
async fn localhost_on_the_same_port_is_our_origin_and_nothing_else_is(app: TestApp) {
    let user = app.user().await;
    let mut key = token();
    let added = register(&app, &user, &mut key, "YubiKey").await;
    let path = format!("/security/keys/{}/rename", added["authenticator"]["id"].as_str().expect("id"));
    let (_, _, page) = app.page(&path, Some(&user.token)).await;
    let csrf = csrf_of(&page);
    let port = app.url.rsplit(':').next().expect("port").to_owned();
    let other: u16 = port.parse::<u16>().expect("port").wrapping_add(1);
    let send_from = |origin: String| {
        let r = app
            .http
            .post(format!("{}{path}", app.url))
            .header(COOKIE, format!("twostep_session={}", user.token))
            .header(ORIGIN, origin)
            .form(&[("csrf", csrf.as_str()), ("name", "Blue key")]);
        async move { r.send().await.expect("post").status().as_u16() }
    };
    for foreign in [
        format!("http://localhost:{other}"),
        format!("https://localhost:{port}"),
        format!("http://localhost.evil.example:{port}"),
        format!("http://localhost:{port}0"),
    ] {
        assert_eq!(send_from(foreign.clone()).await, 403, "{foreign} is not ours");
    }
    assert_eq!(send_from(format!("http://localhost:{port}")).await, 303, "localhost on our port is");
}
