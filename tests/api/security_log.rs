//! The security log as people read it (issue 20, item 4): one entry per
//! sign-in, filtered by category and paged by cursor, on both databases;
//! the raw log's new cursor; bad filters and cursors are 400s.

use serde_json::{Value, json};
use twostep_testkit::{TestApp, both_backends};

use crate::push::{paired, raise_push, verify_push};

fn entries(v: &Value) -> Vec<Value> {
    v["entries"].as_array().expect("entries").clone()
}

fn events(e: &Value) -> Vec<&str> {
    e["events"].as_array().expect("events").iter().filter_map(Value::as_str).collect()
}

/// Every page of the readable log with `query`, following `older`.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut path = format!("/api/v1/me/security-log/readable?{query}");
    loop {
        let page = app.get(&path, Some(token)).await.assert_status(200).body;
        pages.push(entries(&page));
        match page["older"].as_i64() {
            Some(older) => path = format!("/api/v1/me/security-log/readable?{query}&before={older}"),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging ends");
    }
}

async fn security_log_groups_a_sign_in_filters_and_pages(app: TestApp) {
    let user = app.user_with_totp().await;
    // One sign-in, a wrong code first.
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    let token = login.str("login_token");
    let wrong = app.wrong_code(&user);
    let verify = |code: String| json!({"login_token": token, "method": "totp", "code": code});
    app.post("/api/v1/login/verify", &verify(wrong), None).await.assert_error(401, "invalid_code");
    let session = app.post("/api/v1/login/verify", &verify(app.code(&user.secret, 0)), None).await.assert_status(200);
    let session = session.str("session_token");

    let page = app.get("/api/v1/me/security-log/readable", Some(&session)).await.assert_status(200).body;
    let list = entries(&page);
    let sign_in = &list[0];
    assert_eq!(events(sign_in), ["sign_in_password", "sign_in_second_factor", "sign_in_succeeded"], "{page:#}");
    assert!(
        sign_in["title"].as_str().is_some_and(|t| t.starts_with("Signed in with an authenticator app from ")),
        "{sign_in}"
    );
    assert_eq!(sign_in["notes"], json!(["1 wrong code"]));
    assert_eq!((sign_in["success"].as_bool(), sign_in["category"].as_str()), (Some(true), Some("sign-ins")));
    let failed_steps = list.iter().filter(|e| events(e).contains(&"sign_in_second_factor")).count();
    assert_eq!(failed_steps, 1, "the wrong code is inside the sign-in, not an entry of its own");
    assert!(page["older"].is_null(), "one page holds it all");

    // Thirty more entries: confirmations with the password, one each.
    for _ in 0..30 {
        app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&session)).await.assert_status(204);
    }
    let everything = entries(&app.get("/api/v1/me/security-log/readable?limit=100", Some(&session)).await.body);
    let pages = all_pages(&app, &session, "limit=7").await;
    assert!(pages.len() >= 5 && pages.iter().all(|p| p.len() <= 7), "{} pages", pages.len());
    assert_eq!(pages.concat(), everything, "the pages are the whole log, in order, nothing twice");

    // Filters: each shows only its category.
    let changes: Vec<Value> = all_pages(&app, &session, "kind=changes&limit=5").await.concat();
    assert!(changes.iter().all(|e| e["category"] == "changes"), "{changes:#?}");
    assert!(changes.iter().any(|e| e["title"] == "Two-factor authentication turned on with an authenticator app"));
    let sign_ins: Vec<Value> = all_pages(&app, &session, "kind=sign-ins&limit=5").await.concat();
    assert_eq!(sign_ins.len(), everything.iter().filter(|e| e["category"] == "sign-ins").count());
    assert!(sign_ins.iter().any(|e| events(e).contains(&"sign_in_succeeded")));
    let warnings = all_pages(&app, &session, "kind=warnings").await.concat();
    assert!(warnings.iter().all(|e| e["attention"] == true));

    // A cursor is stable while new entries arrive.
    let first = app.get("/api/v1/me/security-log/readable?limit=7", Some(&session)).await.body;
    let older = first["older"].as_i64().expect("an older page");
    let second_path = format!("/api/v1/me/security-log/readable?limit=7&before={older}");
    let before = app.get(&second_path, Some(&session)).await.body;
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&session)).await.assert_status(204);
    assert_eq!(app.get(&second_path, Some(&session)).await.body, before);

    // The raw log pages by id too, and still answers as before.
    let raw = app.get("/api/v1/me/security-log?limit=5", Some(&session)).await.assert_status(200).body;
    let ids: Vec<i64> = raw.as_array().expect("raw").iter().filter_map(|e| e["id"].as_i64()).collect();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let oldest = ids[4];
    let next = app.get(&format!("/api/v1/me/security-log?limit=5&before={oldest}"), Some(&session)).await.body;
    let next_ids: Vec<i64> = next.as_array().expect("raw").iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(next_ids.first().is_some_and(|id| *id < oldest), "{next_ids:?}");
}

async fn security_log_refuses_bad_filters_and_cursors(app: TestApp) {
    let user = app.user().await;
    for bad in ["kind=everything", "before=x", "before=0", "before=-3", "limit=x", "kind="] {
        app.get(&format!("/api/v1/me/security-log/readable?{bad}"), Some(&user.token))
            .await
            .assert_error(400, "invalid_request");
    }
    app.get("/api/v1/me/security-log?before=x", Some(&user.token)).await.assert_error(400, "invalid_request");
    app.get("/api/v1/me/security-log/readable", None).await.assert_error(401, "unauthenticated");
    // The page: the same rules, as pages of ours.
    for bad in ["kind=everything", "before=x", "before=99999999999999999999"] {
        let (status, _, html) = app.page(&format!("/security/log?{bad}"), Some(&user.token)).await;
        assert_eq!(status, 400, "{bad}");
        assert!(html.contains("Back to the security log"), "{html}");
    }
    let (status, _, html) = app.page("/security/log?kind=changes", Some(&user.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Account created"), "{html}");
    assert!(html.contains("aria-current=\"page\">Security changes"), "the filter shows as chosen");
    let (_, _, html) = app.page("/security", Some(&user.token)).await;
    assert!(html.contains("data-testid=\"latest-log\""), "the Security page shows the latest entries");
}

/// Issue 20, item 4: a push sign-in is one entry of the readable log, named
/// after the companion that answered (never "Unknown device"); a denied
/// push is one entry too, and needs attention.
async fn the_security_log_names_the_companion_that_answered(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (_, denied) = raise_push(&app, &user).await;
    let denied = denied.assert_status(202).str("challenge_id");
    device.answer(&app, &denied, &json!({"decision": "deny"})).await.assert_status(204);
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let approve = json!({"decision": "approve", "number": push.str("number")});
    device.answer(&app, &push.str("challenge_id"), &approve).await.assert_status(204);
    let session = verify_push(&app, &login_token, &push.str("challenge_id")).await.assert_status(200);
    let session = session.str("session_token");

    let page = app.get("/api/v1/me/security-log/readable", Some(&session)).await.assert_status(200).body;
    let entries = page["entries"].as_array().expect("entries");
    let title = |i: usize| entries[i]["title"].as_str().unwrap_or_default().to_owned();
    assert!(title(0).starts_with("Signed in with a push approved on Test phone from "), "{page:#}");
    assert_eq!(entries[0]["events"], json!(["sign_in_password", "push_sent", "push_approved", "sign_in_succeeded"]));
    assert!(title(1).contains("the password was right, the push was denied"), "{page:#}");
    assert_eq!(entries[1]["notes"], json!(["Push denied on Test phone"]));
    assert_eq!(entries[1]["attention"], true);
    // The raw log names the companion on its answers too.
    let raw = app.get("/api/v1/me/security-log", Some(&session)).await.assert_status(200).body;
    let answers: Vec<&Value> = raw
        .as_array()
        .expect("raw")
        .iter()
        .filter(|e| e["event"] == "push_approved" || e["event"] == "push_denied")
        .collect();
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|e| e["device"] == "Test phone"), "{answers:#?}");
}

both_backends!(
    security_log_groups_a_sign_in_filters_and_pages,
    security_log_refuses_bad_filters_and_cursors,
    the_security_log_names_the_companion_that_answered,
);
