//! IP allow-lists (issue 6 item 4, story P3; SEC-60, SEC-61): sign-in from
//! outside reads exactly like a wrong password, sessions used from outside
//! end, edits need re-auth and a confirmation to lock oneself out, and the
//! operator may let a list stand in for 2FA under the mandate.
//!
//! Most servers here trust loopback as a proxy, so a request can appear to
//! come from any address through `X-Forwarded-For`.

use reqwest::Method;
use serde_json::{Value, json};
use twostep_testkit::{Db, Resp, TestApp, User, each_backend};

const OFFICE: &str = "198.51.100.7";
const OFFICE_RANGE: &str = "198.51.100.0/24";
const ELSEWHERE: &str = "203.0.113.7";
const PATH: &str = "/api/v1/me/ip-allowlist";

each_backend!(
    a_sign_in_from_outside_reads_like_a_wrong_password,
    a_session_used_from_a_delisted_address_ends,
    locking_oneself_out_needs_confirmation_and_entries_are_checked,
    editing_needs_a_recent_reauth,
    an_untrusted_peer_cannot_claim_a_listed_address,
    a_list_meets_the_mandate_only_when_configured,
);

async fn behind_proxy(db: Db) -> TestApp {
    TestApp::spawn_with_resolved(db, |r| {
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1/32").expect("ranges");
    })
    .await
}

/// A request that appears to come from `ip` (loopback is a trusted proxy).
async fn from(app: &TestApp, ip: &str, method: Method, path: &str, body: Option<&Value>, token: Option<&str>) -> Resp {
    let mut req = app.http.request(method, format!("{}{path}", app.url)).header("x-forwarded-for", ip);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Resp::from(req.send().await.expect("request")).await
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Resp {
    from(app, ip, Method::POST, "/api/v1/login", Some(&json!({"email": email, "password": password})), None).await
}

async fn set_list_from(app: &TestApp, ip: &str, user: &User, entries: &Value) -> Resp {
    from(app, ip, Method::PUT, PATH, Some(&json!({"entries": entries})), Some(&user.token)).await
}

/// Everything a client sees of a refusal but the request id and the date.
fn visible(r: &Resp) -> (u16, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (r.status.as_u16(), r.text.clone(), headers)
}

async fn a_sign_in_from_outside_reads_like_a_wrong_password(db: Db) {
    let app = behind_proxy(db).await;
    let user = app.user().await;
    let r = set_list_from(&app, OFFICE, &user, &json!([{"cidr": OFFICE_RANGE, "label": "Office"}]))
        .await
        .assert_status(200);
    assert_eq!(r.body["entries"], json!([{"cidr": OFFICE_RANGE, "label": "Office"}]));
    assert_eq!(r.body["current_ip"], OFFICE);

    // From the office: signs in as usual.
    login_from(&app, OFFICE, &user.email, &user.password).await.assert_status(200);
    // From elsewhere: right password, wrong password and unknown e-mail look alike.
    let right = login_from(&app, ELSEWHERE, &user.email, &user.password).await.assert_error(401, "invalid_credentials");
    let wrong = login_from(&app, ELSEWHERE, &user.email, "not the password at all").await;
    let unknown = login_from(&app, ELSEWHERE, "nobody@example.com", &user.password).await;
    let wrong_inside = login_from(&app, OFFICE, &user.email, "not the password at all").await;
    assert_eq!(visible(&right), visible(&wrong));
    assert_eq!(visible(&right), visible(&unknown));
    assert_eq!(visible(&right), visible(&wrong_inside));

    // The second step from elsewhere is refused too, without using the code up.
    let c = app.user_with_totp().await;
    set_list_from(&app, OFFICE, &c, &json!([{"cidr": OFFICE}])).await.assert_status(200);
    let login = login_from(&app, OFFICE, &c.email, &c.password).await.assert_status(200);
    let verify = json!({"login_token": login.str("login_token"), "method": "totp", "code": app.code(&c.secret, 0)});
    from(&app, ELSEWHERE, Method::POST, "/api/v1/login/verify", Some(&verify), None)
        .await
        .assert_error(401, "invalid_code");
    from(&app, OFFICE, Method::POST, "/api/v1/login/verify", Some(&verify), None).await.assert_status(200);

    // The throttles cannot tell them apart either: an outside attempt counts
    // as a failure whatever the password, so five right passwords from
    // outside back off exactly like five wrong ones.
    let a = app.user().await;
    let b = app.user().await;
    for u in [&a, &b] {
        set_list_from(&app, OFFICE, u, &json!([{"cidr": OFFICE}])).await.assert_status(200);
    }
    for _ in 0..5 {
        login_from(&app, ELSEWHERE, &a.email, &a.password).await.assert_error(401, "invalid_credentials");
        login_from(&app, ELSEWHERE, &b.email, "a wrong password!!").await.assert_error(401, "invalid_credentials");
    }
    let a6 = login_from(&app, ELSEWHERE, &a.email, &a.password).await.assert_error(429, "too_many_attempts");
    let b6 = login_from(&app, ELSEWHERE, &b.email, "a wrong password!!").await.assert_error(429, "too_many_attempts");
    assert_eq!(visible(&a6), visible(&b6));
    // The backoff holds from the office too (it is the account's counter)…
    login_from(&app, OFFICE, &a.email, &a.password).await.assert_error(429, "too_many_attempts");
    // …and once it has passed, the office signs in.
    app.clock.advance(2);
    login_from(&app, OFFICE, &a.email, &a.password).await.assert_status(200);
}

async fn a_session_used_from_a_delisted_address_ends(db: Db) {
    let app = behind_proxy(db).await;
    let user = app.user().await;
    // No list yet: any address works.
    from(&app, ELSEWHERE, Method::GET, "/api/v1/me", None, Some(&user.token)).await.assert_status(200);
    let laptop = login_from(&app, ELSEWHERE, &user.email, &user.password).await.assert_status(200).str("session_token");
    set_list_from(&app, OFFICE, &user, &json!([{"cidr": OFFICE}])).await.assert_status(200);
    // The session used from the office goes on.
    from(&app, OFFICE, Method::GET, "/api/v1/me", None, Some(&user.token)).await.assert_status(200);
    // The laptop's next request is refused and its session ends…
    from(&app, ELSEWHERE, Method::GET, "/api/v1/me", None, Some(&laptop)).await.assert_error(403, "ip_not_allowed");
    // …so the token is dead even from a listed address.
    from(&app, OFFICE, Method::GET, "/api/v1/me", None, Some(&laptop)).await.assert_error(401, "unauthenticated");
    // Lifting the list lets every address in again.
    set_list_from(&app, OFFICE, &user, &json!([])).await.assert_status(200);
    login_from(&app, ELSEWHERE, &user.email, &user.password).await.assert_status(200);
    let shown = from(&app, ELSEWHERE, Method::GET, PATH, None, Some(&user.token)).await.assert_status(200);
    assert_eq!(shown.body, json!({"entries": [], "current_ip": ELSEWHERE}));
}

async fn locking_oneself_out_needs_confirmation_and_entries_are_checked(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = app.user().await;
    let put = |body: Value| {
        let token = user.token.clone();
        let app = &app;
        async move { app.put(PATH, &body, Some(&token)).await }
    };
    // Invalid entries are named.
    for bad in ["10.0.0.300", "nonsense", "10.0.0.0/33", "2001:db8::/129", ""] {
        let r =
            put(json!({"entries": [{"cidr": "127.0.0.1"}, {"cidr": bad}]})).await.assert_error(400, "invalid_ip_range");
        assert_eq!(r.body["error"]["entry"], bad, "{}", r.text);
    }
    let r = put(json!({"entries": [{"cidr": "0.0.0.0/0"}]})).await.assert_error(400, "invalid_ip_range");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("too broad"), "{}", r.text);
    put(json!({"entries": [{"cidr": "127.0.0.1", "label": "x".repeat(65)}]}))
        .await
        .assert_error(400, "invalid_request");
    let many: Vec<Value> = (0..51).map(|i| json!({"cidr": format!("10.0.0.{i}")})).collect();
    put(json!({"entries": many})).await.assert_error(400, "invalid_request");
    put(json!({"entries": [{"label": "no cidr"}]})).await.assert_error(400, "invalid_request");

    // Entries are normalised and de-duplicated; order and labels kept.
    let r = put(json!({"entries": [
        {"cidr": "127.0.0.1", "label": "  this machine "},
        {"cidr": "10.1.2.3/8", "label": null},
        {"cidr": "127.0.0.1/32", "label": "again"},
        {"cidr": "2001:DB8::1/48"},
        {"cidr": "::ffff:192.0.2.1"},
    ]}))
    .await
    .assert_status(200);
    assert_eq!(
        r.body["entries"],
        json!([
            {"cidr": "127.0.0.1", "label": "this machine"},
            {"cidr": "10.0.0.0/8", "label": ""},
            {"cidr": "2001:db8::/48", "label": ""},
            {"cidr": "192.0.2.1", "label": ""},
        ])
    );
    assert_eq!(r.body["current_ip"], "127.0.0.1");
    let shown = app.get(PATH, Some(&user.token)).await.assert_status(200);
    assert_eq!(shown.body["entries"], r.body["entries"]);

    // A list without this address is refused unless confirmed…
    let r = put(json!({"entries": [{"cidr": OFFICE_RANGE}]})).await.assert_error(409, "would_lock_out");
    assert_eq!(r.body["error"]["current_ip"], "127.0.0.1");
    put(json!({"entries": [{"cidr": OFFICE_RANGE}], "confirm_lockout": false}))
        .await
        .assert_error(409, "would_lock_out");
    let shown = app.get(PATH, Some(&user.token)).await.assert_status(200);
    assert_eq!(shown.body["entries"].as_array().expect("entries").len(), 4, "nothing saved: {}", shown.text);
    // …and, confirmed, it is saved and this session ends at its next request.
    let r = put(json!({"entries": [{"cidr": OFFICE_RANGE}], "confirm_lockout": true})).await.assert_status(200);
    assert_eq!(r.body["entries"], json!([{"cidr": OFFICE_RANGE, "label": ""}]));
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(403, "ip_not_allowed");
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.login(&user.email, &user.password).await.assert_error(401, "invalid_credentials");
}

async fn editing_needs_a_recent_reauth(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = app.user_with_totp().await;
    let list = json!({"entries": [{"cidr": "127.0.0.1", "label": "here"}]});
    // Right after signing in with both factors, it just works.
    let token =
        app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200).str("session_token");
    app.put(PATH, &list, Some(&token)).await.assert_status(200);
    // Eleven minutes later both proofs must be given again; reading needs none.
    app.clock.advance(11 * 60);
    app.get(PATH, Some(&token)).await.assert_status(200);
    app.put(PATH, &json!({"entries": []}), Some(&token)).await.assert_error(403, "reauth_required");
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&token)).await.assert_status(204);
    app.put(PATH, &json!({"entries": []}), Some(&token)).await.assert_error(403, "reauth_required");
    let code = app.code(&user.secret, 0);
    app.post("/api/v1/me/reauth", &json!({"method": "totp", "code": code}), Some(&token)).await.assert_status(204);
    app.put(PATH, &json!({"entries": []}), Some(&token)).await.assert_status(200);
    // No session, no list.
    app.get(PATH, None).await.assert_error(401, "unauthenticated");
    app.put(PATH, &list, None).await.assert_error(401, "unauthenticated");
}

async fn an_untrusted_peer_cannot_claim_a_listed_address(db: Db) {
    // No trusted proxies: X-Forwarded-For is ignored (SEC-60).
    let app = TestApp::spawn(db).await;
    let user = app.user().await;
    let other = login_from(&app, OFFICE, &user.email, &user.password).await.assert_status(200).str("session_token");
    let r = from(&app, OFFICE, Method::PUT, PATH, Some(&json!({"entries": [{"cidr": OFFICE}]})), Some(&other)).await;
    let r = r.assert_error(409, "would_lock_out");
    assert_eq!(r.body["error"]["current_ip"], "127.0.0.1", "the socket address counts");
    from(
        &app,
        OFFICE,
        Method::PUT,
        PATH,
        Some(&json!({"entries": [{"cidr": OFFICE}], "confirm_lockout": true})),
        Some(&user.token),
    )
    .await
    .assert_status(200);
    login_from(&app, OFFICE, &user.email, &user.password).await.assert_error(401, "invalid_credentials");
    from(&app, OFFICE, Method::GET, "/api/v1/me", None, Some(&other)).await.assert_error(403, "ip_not_allowed");
}

async fn a_list_meets_the_mandate_only_when_configured(db: Db) {
    // Not configured: a list is no substitute for 2FA under the mandate.
    let app = TestApp::spawn_with(db, |s| s.require_two_factor = true).await;
    let user = app.user().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let token = login.str("session_token");
    let list = json!({"entries": [{"cidr": "127.0.0.1"}]});
    app.put(PATH, &list, Some(&token)).await.assert_error(403, "enrollment_required");
    app.get(PATH, Some(&token)).await.assert_error(403, "enrollment_required");
    drop(app);

    // Configured: an enrolment-only session may set a list instead of a factor.
    // (Mail is on so the user can verify the address it later accepts an invitation with.)
    let (app, sink) = TestApp::spawn_with_mail_resolved(db, |r| {
        r.settings.require_two_factor = true;
        r.settings.allowlist_satisfies_mandate = true;
    })
    .await;
    let user = app.verified_user(&sink).await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let token = login.str("session_token");
    app.get("/api/v1/me/sessions", Some(&token)).await.assert_error(403, "enrollment_required");
    app.get(PATH, Some(&token)).await.assert_status(200);
    let saved = app.put(PATH, &list, Some(&token)).await.assert_status(200);
    // The list lifts the limit in a new session (SEC-52), and the next
    // sign-in is a plain one.
    app.get("/api/v1/me", Some(&token)).await.assert_error(401, "unauthenticated");
    let token = saved.str("session_token");
    app.get("/api/v1/me/sessions", Some(&token)).await.assert_status(200);
    let again = app.put(PATH, &list, Some(&token)).await.assert_status(200);
    assert!(again.body.get("session_token").is_none(), "a full session keeps its token");
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "authenticated");
    // While the list is what meets the mandate it cannot be cleared.
    app.put(PATH, &json!({"entries": []}), Some(&token)).await.assert_error(403, "two_factor_required_by_policy");
    // An account without a list still has to enrol.
    let bare = app.user().await;
    assert_eq!(app.login(&bare.email, &bare.password).await.str("status"), "enrollment_required");

    // An organisation that requires 2FA is not satisfied by a list.
    let owner = app.user_with_totp().await;
    let org = app.post("/api/v1/orgs", &json!({"name": "Acme"}), Some(&owner.token)).await.assert_status(201).str("id");
    let member = json!({"email": user.email, "role": "member"});
    let sent = app.post(&format!("/api/v1/orgs/{org}/members"), &member, Some(&owner.token)).await.assert_status(202);
    // Accepted with the session the list lifted to a full one.
    app.post(&format!("/api/v1/me/invitations/{}/accept", sent.str("invitation_id")), &json!({}), Some(&token))
        .await
        .assert_status(201);
    app.put(&format!("/api/v1/orgs/{org}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let limited = login.str("session_token");
    app.put(PATH, &list, Some(&limited)).await.assert_error(403, "enrollment_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_changes_are_audited_and_mailed() {
    let (app, sink) = TestApp::spawn_with_mail_resolved(Db::Sqlite, |r| {
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1").expect("ranges");
    })
    .await;
    let user = app.verified_user(&sink).await;
    set_list_from(&app, OFFICE, &user, &json!([{"cidr": OFFICE, "label": "Office"}])).await.assert_status(200);
    let changed = sink.wait_for_subject("IP allow-list of your account was changed").await;
    assert!(changed["text"].as_str().expect("text").contains("1 entries"), "{changed}");

    let laptop = login_from(&app, OFFICE, &user.email, &user.password).await.assert_status(200).str("session_token");
    login_from(&app, ELSEWHERE, &user.email, &user.password).await.assert_error(401, "invalid_credentials");
    let refused = sink.wait_for_subject("sign-in from an unlisted address was refused").await;
    let text = refused["text"].as_str().expect("text");
    assert!(text.contains("correct password") && text.contains(&format!("From address: {ELSEWHERE}")), "{text}");
    assert_eq!(refused["to"], json!([user.email]));
    // A second attempt within the hour is audited, not mailed again.
    login_from(&app, ELSEWHERE, &user.email, "a wrong password!!").await.assert_error(401, "invalid_credentials");
    from(&app, ELSEWHERE, Method::GET, "/api/v1/me", None, Some(&laptop)).await.assert_error(403, "ip_not_allowed");
    sink.wait_for_subject("session was used from an unlisted address").await;
    assert_eq!(sink.with_subject("sign-in from an unlisted address").len(), 1);

    let log = from(&app, OFFICE, Method::GET, "/api/v1/me/security-log", None, Some(&user.token)).await;
    let log = log.assert_status(200).body;
    let events: Vec<(&str, &str, &str, bool)> = log
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|k| k.contains("allowlist")))
        .map(|e| {
            (
                e["event"].as_str().expect("event"),
                e["ip"].as_str().expect("ip"),
                e["details"].as_str().expect("details"),
                e["success"].as_bool().expect("success"),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("session_outside_allowlist", ELSEWHERE, "session ended", false),
            ("sign_in_outside_allowlist", ELSEWHERE, "wrong password", false),
            ("sign_in_outside_allowlist", ELSEWHERE, "right password", false),
            ("allowlist_changed", OFFICE, "1 entries: 198.51.100.7", true),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let doc = app.get("/api/openapi.json", None).await.assert_status(200).body;
    let path = &doc["paths"][PATH];
    for status in ["200", "401", "403"] {
        assert!(path["get"]["responses"][status].is_object(), "GET {status} missing");
    }
    for status in ["200", "400", "401", "403", "409", "413", "415"] {
        assert!(path["put"]["responses"][status].is_object(), "PUT {status} missing");
    }
    let text = doc.to_string();
    for code in ["invalid_ip_range", "would_lock_out", "ip_not_allowed", "reauth_required"] {
        assert!(text.contains(code), "{code} not documented");
    }
}
