//! Limits under bursts (issue 14): requests released together over
//! pre-opened connections, on SQLite and on two instances sharing one
//! PostgreSQL database. A burst must get no more than the same requests one
//! after another would: SEC-31 (backoff), SEC-32 (address cap), SEC-33
//! (lock), SEC-35 (send caps), SEC-37 (one success per credential).

use serde_json::json;
use twostep_testkit::{Db, TestApp, User, both_backends, each_backend};

use crate::burst::{burst, count, tally};

both_backends!(
    fifty_wrong_passwords_at_once_get_five_evaluated,
    two_hundred_wrong_passwords_at_once_get_five_evaluated,
    a_burst_from_one_address_stops_at_its_hourly_cap,
    fifty_wrong_codes_at_once_get_five_evaluated_and_the_next_valid_code_works,
    two_hundred_wrong_codes_at_once_get_five_evaluated_and_the_next_valid_code_works,
    one_login_token_never_takes_more_than_five_wrong_codes,
    a_burst_of_wrong_codes_with_the_right_one_signs_in_at_most_once,
    one_recovery_code_fired_from_fifty_sign_ins_at_once_signs_in_once,
);

each_backend!(
    a_burst_of_sms_requests_sends_exactly_one,
    no_phone_number_is_stored_in_the_clear,
    phone_sends_are_capped_per_calling_code_and_overall,
    a_burst_of_phone_sends_to_many_numbers_stops_at_the_calling_code_and_overall_caps
);

async fn account_id(app: &TestApp, user: &User) -> String {
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200).str("id")
}

/// A throttle counter's failures as stored (0 when absent).
async fn failures(app: &TestApp, scope: &str) -> i64 {
    use sqlx::Row;
    let mut c = app.raw().await;
    let row = sqlx::query("SELECT failures FROM throttle_counters WHERE scope = $1")
        .bind(scope)
        .fetch_optional(&mut c)
        .await
        .expect("read counter");
    row.map_or(0, |r| r.get::<i64, _>(0))
}

async fn wrong_passwords_at_once(app: TestApp, n: usize) {
    let user = app.user().await;
    let id = account_id(&app, &user).await;
    let bases = app.instances().await;
    let email = user.email.clone();
    let rs = burst(&bases, n, move |_, c, base| {
        c.post(format!("{base}/api/v1/login")).json(&json!({"email": email, "password": "not the password at all"}))
    })
    .await;
    // The clock stands still: five failures, then every other attempt
    // waits for the first backoff, unevaluated.
    assert_eq!(count(&rs, 401), 5, "{:?}", tally(&rs));
    assert_eq!(count(&rs, 429), n - 5, "{:?}", tally(&rs));
    assert!(rs.iter().filter(|r| r.status == 429).all(|r| r.header("retry-after") == "1"));
    assert_eq!(failures(&app, &format!("password:{id}")).await, 5);
    assert_eq!(failures(&app, "address:127.0.0.1").await, 5);
    // The lock is far: after the backoff the right password signs in.
    app.clock.advance(1);
    app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(failures(&app, &format!("password:{id}")).await, 0);
}

async fn fifty_wrong_passwords_at_once_get_five_evaluated(app: TestApp) {
    wrong_passwords_at_once(app, 50).await;
}

async fn two_hundred_wrong_passwords_at_once_get_five_evaluated(app: TestApp) {
    wrong_passwords_at_once(app, 200).await;
}

async fn a_burst_from_one_address_stops_at_its_hourly_cap(app: TestApp) {
    // Password spraying: 200 addresses at once from one source; the cap is
    // 100 failed passwords an hour.
    let bases = app.instances().await;
    let rs = burst(&bases, 200, |i, c, base| {
        c.post(format!("{base}/api/v1/login"))
            .json(&json!({"email": format!("sprayed-{i}@example.com"), "password": "Summer2026!"}))
    })
    .await;
    assert_eq!(count(&rs, 401), 100, "{:?}", tally(&rs));
    assert_eq!(count(&rs, 429), 100, "{:?}", tally(&rs));
    assert_eq!(failures(&app, "address:127.0.0.1").await, 100);
}

async fn wrong_codes_at_once(app: TestApp, n: usize) {
    let user = app.user_with_totp().await;
    let id = account_id(&app, &user).await;
    // One login token per request, so only the factor's own backoff limits them.
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(app.login(&user.email, &user.password).await.assert_status(200).str("login_token"));
    }
    let bases = app.instances().await;
    let wrong = app.wrong_code(&user);
    let rs = burst(&bases, n, move |i, c, base| {
        c.post(format!("{base}/api/v1/login/verify"))
            .json(&json!({"login_token": tokens[i], "method": "totp", "code": wrong}))
    })
    .await;
    assert_eq!(count(&rs, 401), 5, "{:?}", tally(&rs));
    assert_eq!(count(&rs, 429), n - 5, "{:?}", tally(&rs));
    assert_eq!(failures(&app, &format!("second_factor:{id}")).await, 5);
    assert_eq!(failures(&app, &format!("totp:{id}")).await, 5);
    // After the first backoff the next valid code is accepted, and it
    // clears every counter the burst left.
    app.clock.advance(1);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    assert_eq!(failures(&app, &format!("second_factor:{id}")).await, 0);
    assert_eq!(failures(&app, &format!("totp:{id}")).await, 0);
    app.clock.advance(30);
    app.sign_in_with(&user, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
}

async fn fifty_wrong_codes_at_once_get_five_evaluated_and_the_next_valid_code_works(app: TestApp) {
    wrong_codes_at_once(app, 50).await;
}

async fn two_hundred_wrong_codes_at_once_get_five_evaluated_and_the_next_valid_code_works(app: TestApp) {
    wrong_codes_at_once(app, 200).await;
}

async fn one_login_token_never_takes_more_than_five_wrong_codes(app: TestApp) {
    use sqlx::Row;
    let user = app.user_with_totp().await;
    let token = app.login(&user.email, &user.password).await.assert_status(200).str("login_token");
    let bases = app.instances().await;
    let wrong = app.wrong_code(&user);
    let t = token.clone();
    let rs = burst(&bases, 100, move |_, c, base| {
        c.post(format!("{base}/api/v1/login/verify"))
            .json(&json!({"login_token": t, "method": "recovery_code", "code": format!("{wrong}-0000-0000-0000")}))
    })
    .await;
    // A worn-out token answers like a wrong code, so the counters say how
    // many were evaluated: the token's five, each counted once.
    assert_eq!(count(&rs, 401) + count(&rs, 429), 100, "{:?}", tally(&rs));
    let mut c = app.raw().await;
    let counted: i64 =
        sqlx::query("SELECT failures FROM login_tokens").fetch_one(&mut c).await.expect("token").get::<i64, _>(0);
    assert_eq!(counted, 5);
    let id = account_id(&app, &user).await;
    assert_eq!(failures(&app, &format!("recovery:{id}")).await, 5);
    // Worn out (or waiting): even the right code does not use it now.
    app.clock.advance(900);
    let r = app
        .post(
            "/api/v1/login/verify",
            &json!({"login_token": token, "method": "totp", "code": app.code(&user.secret, 0)}),
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}

async fn a_burst_of_wrong_codes_with_the_right_one_signs_in_at_most_once(app: TestApp) {
    // SEC-37: twenty copies of the right code on one login token, across
    // instances: one session, never two.
    let user = app.user_with_totp().await;
    let token = app.login(&user.email, &user.password).await.assert_status(200).str("login_token");
    let bases = app.instances().await;
    let right = app.code(&user.secret, 0);
    let rs = burst(&bases, 50, move |_, c, base| {
        c.post(format!("{base}/api/v1/login/verify"))
            .json(&json!({"login_token": token, "method": "totp", "code": right}))
    })
    .await;
    assert_eq!(count(&rs, 200), 1, "{:?}", tally(&rs));
    assert_eq!(count(&rs, 200) + count(&rs, 401) + count(&rs, 429), 50, "{:?}", tally(&rs));
}

async fn one_recovery_code_fired_from_fifty_sign_ins_at_once_signs_in_once(app: TestApp) {
    // SEC-40 and SEC-37: one recovery code on fifty login tokens at once,
    // across instances. Its single use (written through the store's write
    // gate on SQLite) lets one sign-in through and spends one code.
    let user = app.user_with_totp().await;
    let mut tokens = Vec::with_capacity(50);
    for _ in 0..50 {
        tokens.push(app.login(&user.email, &user.password).await.assert_status(200).str("login_token"));
    }
    let bases = app.instances().await;
    let code = user.recovery_codes[0].clone();
    let rs = burst(&bases, 50, move |i, c, base| {
        c.post(format!("{base}/api/v1/login/verify"))
            .json(&json!({"login_token": tokens[i], "method": "recovery_code", "code": code}))
    })
    .await;
    assert_eq!(count(&rs, 200), 1, "{:?}", tally(&rs));
    assert_eq!(count(&rs, 200) + count(&rs, 401) + count(&rs, 429), 50, "{:?}", tally(&rs));
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["recovery_codes_remaining"], 9);
}

async fn a_burst_of_sms_requests_sends_exactly_one(db: Db) {
    let (app, rx) = crate::phone::twilio_app(db).await;
    let user = app.user().await;
    crate::phone::add_phone(&app, &rx, &user, "+14155550123").await;
    let before = rx.requests().len();
    let token = app.login(&user.email, &user.password).await.assert_status(200).str("login_token");
    let bases = app.instances().await;
    for n in [50, 200] {
        let t = token.clone();
        let rs = burst(&bases, n, move |_, c, base| {
            c.post(format!("{base}/api/v1/login/challenge")).json(&json!({"login_token": t, "method": "sms"}))
        })
        .await;
        // SEC-35: one send per 30 s per login and per number.
        assert_eq!(count(&rs, 202), 1, "{:?}", tally(&rs));
        assert_eq!(count(&rs, 429), n - 1, "{:?}", tally(&rs));
        app.clock.advance(31);
    }
    rx.wait_for(before + 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.requests().len(), before + 2, "exactly the two accepted sends reached the provider");
}

async fn no_phone_number_is_stored_in_the_clear(db: Db) {
    let (app, rx) = crate::phone::twilio_app(db).await;
    let user = app.user().await;
    crate::phone::add_phone(&app, &rx, &user, "+14155550123").await;
    let token = app.login(&user.email, &user.password).await.assert_status(200).str("login_token");
    app.post("/api/v1/login/challenge", &json!({"login_token": token, "method": "sms"}), None).await.assert_status(202);
    // A verification to a second number is pending (its code row holds it).
    app.post("/api/v1/me/phone", &json!({"phone": "+12015550123"}), Some(&user.token)).await.assert_status(202);
    let dump = database_text(&app).await;
    for digits in ["4155550123", "2015550123"] {
        assert!(!dump.contains(digits), "{digits} found in the database");
        let hex = data_encoding::HEXLOWER.encode(digits.as_bytes());
        assert!(!dump.contains(&hex), "{digits} found hex-encoded in the database");
    }
    // The pending number still reads back: confirming it works.
    let code = rx.code(rx.requests().len()).await;
    app.post("/api/v1/me/phone/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(200);
}

/// Everything the database holds, as text: the SQLite files' bytes (WAL
/// included), or every row of every table of the test's PostgreSQL schema.
async fn database_text(app: &TestApp) -> String {
    use sqlx::Row;
    match app.db {
        Db::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://").split('?').next().expect("path").to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Db::Postgres => {
            let mut c = app.raw().await;
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut c)
            .await
            .expect("tables")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            assert!(tables.iter().any(|t| t == "oob_sends"), "{tables:?}");
            let mut out = String::new();
            for t in tables {
                for r in
                    sqlx::query(&format!("SELECT CAST(t AS TEXT) FROM {t} t")).fetch_all(&mut c).await.expect("rows")
                {
                    out.push_str(&r.get::<String, _>(0));
                    out.push('\n');
                }
            }
            out
        }
    }
}

/// §2.8 pumping: hourly caps per calling code and on all SMS and voice,
/// whoever the accounts and numbers are.
async fn phone_sends_are_capped_per_calling_code_and_overall(db: Db) {
    for (per_code, overall) in [(2, 100), (100, 2)] {
        let (app, _rx) = crate::phone::twilio_app_with(db, |s| {
            s.phone_sends_per_hour_per_calling_code = per_code;
            s.phone_sends_per_hour = overall;
        })
        .await;
        for number in ["+14155550123", "+12015550123"] {
            let user = app.user().await;
            app.post("/api/v1/me/phone", &json!({"phone": number}), Some(&user.token)).await.assert_status(202);
        }
        let third = app.user().await;
        let r = app
            .post("/api/v1/me/phone", &json!({"phone": "+14155550124"}), Some(&third.token))
            .await
            .assert_error(429, "too_many_requests");
        let wait: i64 = r.header("retry-after").parse().expect("Retry-After");
        assert!(wait > 0 && wait <= 3600, "{wait}");
        // The hour passes; the cap has room again.
        app.clock.advance(wait);
        let fresh = app.login(&third.email, &third.password).await.assert_status(200).str("session_token");
        app.post("/api/v1/me/phone", &json!({"phone": "+14155550124"}), Some(&fresh)).await.assert_status(202);
    }
}

/// The same caps under a burst: fifty accounts, each verifying its own
/// number at the same instant, across instances.
async fn a_burst_of_phone_sends_to_many_numbers_stops_at_the_calling_code_and_overall_caps(db: Db) {
    for (per_code, overall) in [(3, 1000), (1000, 3)] {
        let (app, _rx) = crate::phone::twilio_app_with(db, |s| {
            s.phone_sends_per_hour_per_calling_code = per_code;
            s.phone_sends_per_hour = overall;
        })
        .await;
        let mut tokens = Vec::new();
        for _ in 0..50 {
            tokens.push(app.user().await.token);
        }
        let bases = app.instances().await;
        let rs = burst(&bases, 50, move |i, c, base| {
            c.post(format!("{base}/api/v1/me/phone"))
                .bearer_auth(&tokens[i])
                .json(&json!({"phone": format!("+141555501{i:02}")}))
        })
        .await;
        assert_eq!(count(&rs, 202), 3, "{:?}", tally(&rs));
        assert_eq!(count(&rs, 429), 47, "{:?}", tally(&rs));
    }
}
