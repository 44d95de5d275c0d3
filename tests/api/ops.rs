//! Operations (issue 19) on the shipped binary: health probes, a graceful
//! stop on SIGTERM with requests and a long-poll in flight, systemd
//! notices, and an online backup restored into a fresh directory. The
//! metrics are in `ops_metrics`, the outbox hand-over between two
//! instances in `ops_handoff`.

use std::path::Path;
use std::time::{Duration, Instant};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twostep_domain::factors::push::{device_message, pairing_message};
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_domain::factors::totp::otpauth::base32_decode;

use crate::binary::{Served, output, post, serve_env, twostep};
use twostep_testkit::real_now as now;

pub(crate) fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

pub(crate) struct TotpUser {
    pub email: String,
    pub password: String,
    pub session: String,
    pub secret: Vec<u8>,
    pub codes: Vec<String>,
}

/// Signs up and enrols TOTP over HTTP.
pub(crate) async fn totp_user(http: &reqwest::Client, base: &str, email: &str) -> TotpUser {
    let password = "a long and secret passphrase".to_owned();
    let u = |p: &str| format!("{base}{p}");
    let (status, _) = post(http, u("/api/v1/accounts"), json!({"email": email, "password": password}), None).await;
    assert_eq!(status, 201);
    let (_, login) = post(http, u("/api/v1/login"), json!({"email": email, "password": password}), None).await;
    let session = login["session_token"].as_str().expect("session").to_owned();
    let (_, enrol) = post(http, u("/api/v1/me/totp"), json!({}), Some(&session)).await;
    let secret = base32_decode(enrol["secret"].as_str().expect("secret")).expect("b32");
    let code = totp(&secret, now() - 30, TotpParams::DEFAULT);
    let body = json!({"enrollment_id": enrol["enrollment_id"], "code": code});
    let (status, confirmed) = post(http, u("/api/v1/me/totp/confirm"), body, Some(&session)).await;
    assert_eq!(status, 201, "{confirmed}");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    TotpUser { email: email.to_owned(), password, session, secret, codes }
}

/// Password, then `method` with `code`: the final status.
pub(crate) async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    user: &TotpUser,
    method: &str,
    code: &str,
) -> (u16, Value) {
    let body = json!({"email": user.email, "password": user.password});
    let (_, step1) = post(http, format!("{base}/api/v1/login"), body, None).await;
    let body = json!({"login_token": step1["login_token"], "method": method, "code": code});
    post(http, format!("{base}/api/v1/login/verify"), body, None).await
}

/// Pairs a companion device; returns its id and key.
pub(crate) async fn pair(http: &reqwest::Client, base: &str, session: &str) -> (String, SigningKey) {
    let (status, p) = post(http, format!("{base}/api/v1/me/push-devices/pairing"), json!({}), Some(session)).await;
    assert_eq!(status, 201, "{p}");
    let code = p["pairing_url"].as_str().expect("url").split_once("#pair=").expect("code").1.to_owned();
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let public = b64(key.verifying_key().to_encoded_point(false).as_bytes());
    let sig: Signature = key.sign(&pairing_message(&code, &public));
    let body = json!({"pairing_code": code, "name": "phone", "public_key": public, "signature": b64(&sig.to_bytes())});
    let (status, r) = post(http, format!("{base}/api/v1/push/devices"), body, None).await;
    assert_eq!(status, 201, "{r}");
    (r["device_id"].as_str().expect("id").to_owned(), key)
}

/// The device's long-poll for sign-in requests.
async fn device_poll(http: reqwest::Client, base: String, id: String, key: SigningKey, wait: u64) -> (u16, Value) {
    let path = format!("/api/v1/push/challenges?wait={wait}");
    let ts = now().to_string();
    let sig: Signature = key.sign(&device_message("GET", &path, &ts, b""));
    let r = http
        .get(format!("{base}{path}"))
        .header("x-twostep-device", id)
        .header("x-twostep-timestamp", ts)
        .header("x-twostep-signature", b64(&sig.to_bytes()))
        .send()
        .await
        .expect("long-poll answered");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A sign-in whose body arrives in two halves `gap` apart: a request in
/// flight for that long. Returns the status line.
async fn slow_request(base: &str, gap: Duration) -> String {
    let addr = base.trim_start_matches("http://");
    let body = br#"{"email":"nobody@example.com","password":"not the password at all"}"#;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&body[..10]).await.expect("first half");
    tokio::time::sleep(gap).await;
    s.write_all(&body[10..]).await.expect("second half");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

pub(crate) fn terminate(served: &Served) {
    let pid = served.child.id().to_string();
    let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success();
    assert!(ok, "SIGTERM sent");
}

/// Waits for the child to exit, at most `bound`.
pub(crate) fn exit_within(served: &mut Served, bound: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = served.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(start.elapsed() < bound, "still running after {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn notice(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a systemd notice");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_finishes_work_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().expect("dir");
    let sock_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    notify.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let env = [
        ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8")),
        ("TWOSTEP_SHUTDOWN__DRAIN_DELAY_MS", "1500"),
        ("TWOSTEP_SHUTDOWN__TIMEOUT_SECS", "15"),
    ];
    let mut served = serve_env(dir.path(), &env);
    assert_eq!(notice(&notify), "READY=1");
    let base = served.url.clone();
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/livez")).send().await.expect("livez").status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("body"), r#"{"status":"ok"}"#);
    assert_eq!(http.get(format!("{base}/healthz")).send().await.expect("healthz").status(), 200);
    let (ok, out, err) = output(twostep(dir.path()).args(["healthcheck", "--url", &base]), "");
    assert!(ok && out.contains("\"ok\""), "{out}{err}");

    let user = totp_user(&http, &base, "drain@example.com").await;
    let (id, key) = pair(&http, &base, &user.session).await;
    let poll = tokio::spawn(device_poll(http.clone(), base.clone(), id, key, 25));
    let slow_base = base.clone();
    let slow = tokio::spawn(async move { slow_request(&slow_base, Duration::from_millis(2500)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;

    terminate(&served);
    let signalled = Instant::now();
    assert_eq!(notice(&notify), "STOPPING=1");
    // Still listening during the drain delay, but no longer ready.
    let r = http.get(format!("{base}/readyz")).send().await.expect("readyz while draining");
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.expect("body"), r#"{"status":"draining"}"#);
    let (ok, _, _) = output(twostep(dir.path()).args(["healthcheck", "--url", &base]), "");
    assert!(!ok, "healthcheck fails while draining");

    // The long-poll answers (empty) once the listener closes, long before its 25 s.
    let (status, body) = poll.await.expect("poll task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["challenges"], json!([]));
    assert!(signalled.elapsed() < Duration::from_secs(10), "the long-poll was released");
    // The request whose body was still arriving got its real answer.
    let line = slow.await.expect("slow task");
    assert!(line.starts_with("HTTP/1.1 4"), "a real answer, not a reset: {line:?}");

    let status = exit_within(&mut served, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let logs = served.logs.lock().expect("lock").clone();
    assert!(logs.contains("outbox worker stopped") && logs.contains("stopped"), "{logs}");
    // The port is closed.
    assert!(http.get(format!("{base}/livez")).send().await.is_err());
}

#[test]
fn bad_shutdown_and_metrics_settings_name_their_key() {
    let dir = tempfile::tempdir().expect("dir");
    for (var, value, named) in [
        ("TWOSTEP_SHUTDOWN__TIMEOUT_SECS", "0", "shutdown.timeout_secs"),
        ("TWOSTEP_SHUTDOWN__DRAIN_DELAY_MS", "60000", "shutdown.drain_delay_ms"),
        ("TWOSTEP_METRICS_LISTEN", "nowhere", "metrics_listen"),
    ] {
        let (ok, _, err) = output(twostep(dir.path()).env(var, value).args(["config", "check"]), "");
        assert!(!ok, "{var}={value} should be refused");
        assert!(err.contains(named), "{var}: {err}");
    }
}

async fn integrity(path: &Path) -> (String, i64) {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open copy");
    let ok: String = sqlx::query("PRAGMA integrity_check").fetch_one(&mut c).await.expect("check").get(0);
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM accounts").fetch_one(&mut c).await.expect("count").get(0);
    (ok, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_serves_sign_ins() {
    let dir = tempfile::tempdir().expect("dir");
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let mut served = serve_env(&live, &[("TWOSTEP_SIGNUP__PER_SOURCE_PER_HOUR", "1000000")]);
    let base = served.url.clone();
    let http = reqwest::Client::new();
    let user = totp_user(&http, &base, "kept@example.com").await;

    // Sign-ups and sign-ins keep writing while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let email = format!("load-{n}@example.com");
                let body = json!({"email": email, "password": "another long passphrase"});
                let created = post(&http, format!("{base}/api/v1/accounts"), body.clone(), None).await.0 == 201;
                let signed_in = post(&http, format!("{base}/api/v1/login"), body, None).await.0 == 200;
                n += u32::from(created && signed_in);
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let copy = dir.path().join("backups").join("twostep-copy.db");
    std::fs::create_dir_all(copy.parent().expect("parent")).expect("backups dir");
    let out = copy.to_str().expect("utf-8").to_owned();
    let live_dir = live.clone();
    let (ok, stdout, err) =
        tokio::task::spawn_blocking(move || output(twostep(&live_dir).args(["backup", "--out", &out]), ""))
            .await
            .expect("backup task");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.expect("writer");
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("integrity check ok") && stdout.contains("key"), "{stdout}");
    assert!(written > 0, "the writer ran during the backup");
    let (check, accounts) = integrity(&copy).await;
    assert_eq!(check, "ok");
    assert!(accounts >= 1, "the TOTP user at least");
    // A second backup to the same file needs --force.
    let (ok, _, err) = output(twostep(&live).args(["backup", "--out", copy.to_str().expect("utf-8")]), "");
    assert!(!ok && err.contains("--force"), "{err}");
    // Restoring over the live database while its server runs is refused.
    let (ok, _, err) = output(twostep(&live).args(["restore", "--from", copy.to_str().expect("utf-8"), "--force"]), "");
    assert!(!ok && err.contains("stop it before restoring"), "{err}");
    served.child.kill().expect("kill");
    served.child.wait().expect("wait");

    // A fresh directory: the copy and the key file, restored.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).expect("fresh dir");
    std::fs::copy(live.join("twostep.key"), fresh.join("twostep.key")).expect("key");
    let (ok, out, err) = output(twostep(&fresh).args(["restore", "--from", copy.to_str().expect("utf-8")]), "");
    assert!(ok, "{out}{err}");
    let mut restored = serve_env(&fresh, &[]);
    let base = restored.url.clone();
    let (status, body) =
        sign_in(&http, &base, &user, "totp", &totp(&user.secret, now() + 30, TotpParams::DEFAULT)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sign_in(&http, &base, &user, "recovery_code", &user.codes[0]).await;
    assert_eq!(status, 200, "{body}");
    restored.child.kill().expect("kill");
    restored.child.wait().expect("wait");
    let logs = restored.logs.lock().expect("lock").clone();
    assert!(!logs.contains("generated a new master key"), "the restored key was used");
}

#[test]
fn backup_refuses_postgres_and_restore_refuses_garbage() {
    let dir = tempfile::tempdir().expect("dir");
    let (ok, _, err) = output(
        twostep(dir.path()).env("TWOSTEP_DATABASE_URL", "postgres://u@127.0.0.1/x").args(["backup", "--out", "x.db"]),
        "",
    );
    assert!(!ok && err.contains("pg_dump"), "{err}");
    std::fs::write(dir.path().join("junk.db"), vec![1u8; 4096]).expect("junk");
    let (ok, _, err) = output(twostep(dir.path()).args(["restore", "--from", "junk.db"]), "");
    assert!(!ok, "{err}");
    assert!(!dir.path().join("twostep.db").exists(), "nothing left in place of the database");
}

#[tokio::test]
async fn postgres_honours_sslmode_require() {
    // sqlx decides TLS from the URL's sslmode; the store must be built with a TLS backend for it.
    let base = twostep_testkit::postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let store =
        twostep_store::SqlStore::connect(&format!("{base}{sep}sslmode=require")).await.expect("connect over TLS");
    let row = sqlx::query("SELECT CAST(ssl AS TEXT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_ssl");
    let ssl: String = sqlx::Row::get(&row, 0);
    assert_eq!(ssl, "true");
    store.close().await;
}
