//! Master key rotation (issue 19) on the shipped binary, on SQLite and on
//! PostgreSQL, with the server running throughout: `twostep key rotate` is
//! killed part-way, the server keeps signing people in with both keys, the
//! rotation resumes and finishes, every secret still opens, and the old key
//! alone opens nothing (SEC-24: secrets sealed at rest under a key kept
//! outside the database).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_testkit::real_now as now;

use crate::binary::{output, post, serve_env, twostep};
use crate::ops::{TotpUser, sign_in, totp_user};

/// The non-comment lines of the key file: the current key first.
fn key_lines(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join("twostep.key"))
        .expect("key file")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn key_status(data: &Path, env: &[(&str, &str)]) -> Value {
    let (ok, out, err) = output(twostep(data).envs(env.iter().copied()).args(["key", "status", "--json"]), "");
    assert!(ok, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn total(status: &Value) -> u64 {
    status["values"].as_array().expect("values").iter().map(|v| v["count"].as_u64().expect("count")).sum()
}

/// Runs `key rotate` slowly and kills it (SIGKILL) once it is inside the
/// recovery codes: the authenticators are done, most codes are not.
fn rotate_and_kill(data: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let mut child = twostep(data)
        .envs(env.iter().copied())
        .args(["key", "rotate", "--settle", "3", "--batch", "1", "--pause-ms", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rotate");
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok) {
        let inside_codes = line.starts_with("re-sealed 1 in recovery_codes");
        seen.push(line);
        if inside_codes && seen.iter().filter(|l| l.contains("in recovery_codes")).count() == 3 {
            child.kill().expect("kill");
            break;
        }
    }
    child.wait().expect("wait");
    seen
}

async fn signs_in_with_both(http: &reqwest::Client, base: &str, user: &TotpUser, at: i64, code: usize) {
    let (status, body) = sign_in(http, base, user, "totp", &totp(&user.secret, at, TotpParams::DEFAULT)).await;
    assert_eq!(status, 200, "{} at {at}: {body}", user.email);
    let (status, body) = sign_in(http, base, user, "recovery_code", &user.codes[code]).await;
    assert_eq!(status, 200, "{}: {body}", user.email);
}

async fn rotation_story(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let mut served = serve_env(data, env);
    let base = served.url.clone();
    let http = reqwest::Client::new();
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(totp_user(&http, &base, &format!("rotate-{i}@example.com")).await);
    }
    // Kept for the end: codes no server has seen yet.
    let untouched = users.pop().expect("fifth user");
    // A set-up left half-done: its seed is sealed too.
    let (status, _) = post(&http, format!("{base}/api/v1/me/totp"), json!({}), Some(&users[0].session)).await;
    assert_eq!(status, 201);
    let old = key_lines(data);
    assert_eq!(old.len(), 1);
    let before = key_status(data, env);
    assert_eq!(before["not_under_current"], 0);
    let sealed = total(&before);
    assert!(sealed > 5 + 50, "authenticators, recovery codes and the set-up: {before}");

    // Killed part-way: two keys in the file, values under both.
    let lines = rotate_and_kill(data, env);
    assert!(lines.iter().any(|l| l.starts_with("new master key")), "{lines:?}");
    let keys = key_lines(data);
    assert_eq!(keys.len(), 2, "new key first, old kept: {keys:?}");
    assert_eq!(keys[1], old[0]);
    let half = key_status(data, env);
    let moved = total(&half) - half["not_under_current"].as_u64().expect("count");
    assert!(moved >= 4 + 3 && half["not_under_current"].as_u64().expect("count") > 0, "{half}");
    assert_eq!(half["not_openable"], 0, "{half}");

    // The server never stopped: it reads both keys. The authenticators are
    // under the new key, most recovery codes' lookups under the old one.
    for user in &users {
        signs_in_with_both(&http, &base, user, now(), 0).await;
    }

    let (ok, out, err) = output(twostep(data).envs(env.iter().copied()).args(["key", "rotate", "--settle", "0"]), "");
    assert!(ok, "{out}{err}");
    assert!(out.contains("resuming the rotation") && out.contains("rotation finished"), "{out}");
    assert_eq!(key_lines(data), vec![keys[0].clone()], "the old key is gone from the file");
    let after = key_status(data, env);
    assert_eq!(after["not_under_current"], 0, "{after}");
    assert_eq!(after["not_openable"], 0, "{after}");
    assert_eq!(after["last_rotation"]["target"], after["current"]);
    assert!(after["last_rotation"]["finished_at"].is_string(), "{after}");

    // Every secret opens: on the running server (which has dropped the old
    // key from its keyring by now) and on a fresh start.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for user in &users[..3] {
        signs_in_with_both(&http, &base, user, now() + 30, 1).await;
    }
    served.child.kill().expect("kill");
    served.child.wait().expect("wait");
    let logs = served.logs.lock().expect("lock").clone();
    assert!(logs.contains("master keys reloaded from the key file"), "the server followed the key file");
    let mut restarted = serve_env(data, env);
    signs_in_with_both(&http, &restarted.url, &users[3], now() + 30, 1).await;
    restarted.child.kill().expect("kill");
    restarted.child.wait().expect("wait");

    // The old key alone opens nothing.
    let with_old: Vec<(&str, &str)> = env.iter().copied().chain([("TWOSTEP_SECRET_KEY", old[0].as_str())]).collect();
    let refused = key_status(data, &with_old);
    assert_eq!(refused["not_openable"].as_u64(), Some(total(&refused)), "{refused}");
    // A server given only the old key refuses to start rather than fail
    // every sign-in: the Web Push key it needs is sealed under the new one.
    let (ok, _, err) =
        output(twostep(data).envs(with_old.iter().copied()).args(["serve", "--listen", "127.0.0.1:0"]), "");
    assert!(!ok && err.contains("cannot be opened with the keys held"), "{err}");
    // The same codes on the current key: they were good all along.
    let mut current = serve_env(data, env);
    signs_in_with_both(&http, &current.url, &untouched, now(), 0).await;
    current.child.kill().expect("kill");
    current.child.wait().expect("wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec24_rotation_killed_half_way_resumes_online_on_sqlite() {
    rotation_story(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec24_rotation_killed_half_way_resumes_online_on_postgres() {
    let schema = twostep_testkit::PgSchema::create().await;
    rotation_story(&[("TWOSTEP_DATABASE_URL", schema.url.as_str())]).await;
}

#[test]
fn inline_keys_need_the_operator_and_bad_retiring_keys_name_their_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let key = "ab".repeat(32);
    let (ok, out, err) = output(twostep(dir.path()).env("TWOSTEP_SECRET_KEY", &key).arg("migrate"), "");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = output(twostep(dir.path()).env("TWOSTEP_SECRET_KEY", &key).args(["key", "rotate"]), "");
    assert!(!ok && err.contains("retiring_secret_keys") && err.contains("twostep key generate"), "{err}");
    let (ok, _, err) = output(
        twostep(dir.path())
            .env("TWOSTEP_SECRET_KEY", &key)
            .env("TWOSTEP_RETIRING_SECRET_KEYS", "nothex")
            .args(["key", "status"]),
        "",
    );
    assert!(!ok && err.contains("retiring_secret_keys"), "{err}");
    let (ok, out, _) = output(twostep(dir.path()).args(["key", "generate"]), "");
    assert!(ok && out.trim().len() == 64 && out.trim().chars().all(|c| c.is_ascii_hexdigit()), "{out}");
}
