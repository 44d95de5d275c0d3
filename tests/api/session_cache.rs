//! The session cache (`twostep_domain::sessions::cache`): the forward-auth
//! check and `/me` answer from memory, yet whatever ends a session ends
//! access with the next request, on the instance that ended it, on another
//! server process (PostgreSQL: `NOTIFY`) and after the command line changed
//! the database (SQLite: the marker file; PostgreSQL: `NOTIFY`).

use std::time::{Duration, Instant};

use serde_json::json;
use twostep_domain::sessions::cache::CACHE_SECS;
use twostep_testkit::{Db, TestApp, User, each_backend};

each_backend!(what_ends_a_session_ends_access_with_the_next_request);

/// A server with the forward-auth rules of `forward_auth.rs`.
async fn spawn(db: Db) -> TestApp {
    TestApp::spawn_with_resolved(db, |r| r.settings.access = crate::forward_auth::rules()).await
}

const URL: &str = "http://app.example.test/one/page";

/// The nginx check on the server at `base`, as a script asks it (bearer
/// token): its status and `Remote-Email`.
async fn check(app: &TestApp, base: &str, token: &str) -> (u16, String) {
    let r = app
        .http
        .get(format!("{base}/api/authz/auth-request"))
        .header("x-original-url", URL)
        .header("x-original-method", "GET")
        .bearer_auth(token)
        .send()
        .await
        .expect("check");
    let email = r.headers().get("remote-email").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (r.status().as_u16(), email)
}

async fn me(app: &TestApp, base: &str, token: &str) -> u16 {
    app.http.get(format!("{base}/api/v1/me")).bearer_auth(token).send().await.expect("me").status().as_u16()
}

async fn set_email(app: &TestApp, from: &str, to: &str) {
    let mut raw = app.raw().await;
    sqlx::query("UPDATE accounts SET email = $1 WHERE email = $2")
        .bind(to)
        .bind(from)
        .execute(&mut raw)
        .await
        .expect("hand edit");
}

/// Checks `token` on `base` until the answer comes from that server's
/// cache, proven by a hand edit of the account (which announces nothing)
/// that the check does not see. A PostgreSQL server keeps nothing until its
/// `LISTEN` connection is up, hence the retries.
async fn warm(app: &TestApp, base: &str, user: &User, token: &str) {
    let probe = format!("probe-{}@example.com", uuid::Uuid::new_v4().simple());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert_eq!(check(app, base, token).await, (200, user.email.clone()));
        set_email(app, &user.email, &probe).await;
        let (status, seen) = check(app, base, token).await;
        set_email(app, &probe, &user.email).await;
        assert_eq!(status, 200);
        if seen == user.email {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never answered from its cache");
        // The probe may have been kept if the cache came on in between:
        // let every kept copy age out (the clock is the servers' own).
        app.clock.advance(CACHE_SECS);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 1 s) for `token` to be refused on `base`, by the check
/// and by `/me`: the announcement to another process is a `NOTIFY` (or a
/// marker file), delivered after the change commits, not with it.
async fn refused_within_a_second(app: &TestApp, base: &str, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        if check(app, base, token).await.0 == 401 {
            assert_eq!(me(app, base, token).await, 401);
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{base} still lets the ended session in");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn what_ends_a_session_ends_access_with_the_next_request(db: Db) {
    let app = spawn(db).await;
    let base = app.url.clone();

    // Sign-out.
    let user = app.user().await;
    warm(&app, &base, &user, &user.token).await;
    app.post("/api/v1/logout", &json!({}), Some(&user.token)).await.assert_status(204);
    assert_eq!(check(&app, &base, &user.token).await.0, 401);
    assert_eq!(me(&app, &base, &user.token).await, 401);

    // Sign out everywhere else.
    let here = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    let there = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    warm(&app, &base, &user, &there).await;
    app.post("/api/v1/me/sessions/revoke-others", &json!({}), Some(&here)).await.assert_status(204);
    assert_eq!(check(&app, &base, &there).await.0, 401);
    assert_eq!(check(&app, &base, &here).await.0, 200);

    // An administrator disables the account.
    let (admin, _) = crate::admin::admin(&app).await;
    let target = app.user().await;
    let target_id = app.get("/api/v1/me", Some(&target.token)).await.assert_status(200).str("id");
    warm(&app, &base, &target, &target.token).await;
    app.post(&format!("/api/v1/admin/users/{target_id}/disable"), &json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    assert_eq!(check(&app, &base, &target.token).await.0, 401);
    assert_eq!(me(&app, &base, &target.token).await, 401);

    // The command line, another process: at once on SQLite (the marker is
    // bumped before the command exits), within the NOTIFY's delivery on
    // PostgreSQL.
    let other = app.user().await;
    warm(&app, &base, &other, &other.token).await;
    let (ok, out, err) = crate::admin::cli(&app, &["user", "disable", &other.email]).await;
    assert!(ok, "{out}{err}");
    if db == Db::Sqlite {
        assert_eq!(check(&app, &base, &other.token).await.0, 401);
    } else {
        refused_within_a_second(&app, &base, &other.token).await;
    }

    // A hand edit of the database announces nothing: it is seen once the
    // kept copy is CACHE_SECS old.
    let last = app.user().await;
    warm(&app, &base, &last, &last.token).await;
    let mut raw = app.raw().await;
    sqlx::query("DELETE FROM sessions").execute(&mut raw).await.expect("delete");
    app.clock.advance(CACHE_SECS);
    assert_eq!(check(&app, &base, &last.token).await.0, 401);
}

/// Two servers on one PostgreSQL database: a session kept in B's cache is
/// refused by B as soon as A's `NOTIFY` arrives (polled, at most 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_ends_access_on_the_other() {
    let a = spawn(Db::Postgres).await;
    let b = a.second_instance().await;

    // Sign-out on A.
    let user = a.user().await;
    warm(&a, &b, &user, &user.token).await;
    a.post("/api/v1/logout", &json!({}), Some(&user.token)).await.assert_status(204);
    let signed_out = refused_within_a_second(&a, &b, &user.token).await;

    // Sign out everywhere else, on A.
    let here = a.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    let there = a.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    warm(&a, &b, &user, &there).await;
    a.post("/api/v1/me/sessions/revoke-others", &json!({}), Some(&here)).await.assert_status(204);
    let everywhere = refused_within_a_second(&a, &b, &there).await;
    assert_eq!(check(&a, &b, &here).await.0, 200);

    // An administrator disables the account on A.
    let (admin, _) = crate::admin::admin(&a).await;
    let target = a.user().await;
    let target_id = a.get("/api/v1/me", Some(&target.token)).await.assert_status(200).str("id");
    warm(&a, &b, &target, &target.token).await;
    a.post(&format!("/api/v1/admin/users/{target_id}/disable"), &json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    let disabled = refused_within_a_second(&a, &b, &target.token).await;
    eprintln!("refused on B after: sign-out {signed_out:?}, everywhere {everywhere:?}, disable {disabled:?}");
}

/// A server whose `LISTEN` connection is lost cannot hear sign-outs: it
/// must not answer from what it kept. Killing the connection (every test
/// server's on this database: they only read more meanwhile) makes a hand
/// edit that the cache was hiding visible without the clock moving (read
/// while the listener is down, or the cache started over on reconnect),
/// and the cache is back once the listener is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_turns_the_cache_off_until_it_is_back() {
    let app = spawn(Db::Postgres).await;
    let base = app.url.clone();
    let user = app.user().await;
    warm(&app, &base, &user, &user.token).await;
    let moved = format!("moved-{}@example.com", uuid::Uuid::new_v4().simple());
    set_email(&app, &user.email, &moved).await;
    assert_eq!(check(&app, &base, &user.token).await, (200, user.email.clone()), "kept");

    let mut raw = app.raw().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query = 'LISTEN \"twostep_sessions\"'",
    )
    .execute(&mut raw)
    .await
    .expect("terminate the listeners");
    let start = Instant::now();
    while check(&app, &base, &user.token).await.1 != moved {
        assert!(start.elapsed() < Duration::from_secs(3), "the old row outlived the listener");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    set_email(&app, &moved, &user.email).await;
    warm(&app, &base, &user, &user.token).await;
}
