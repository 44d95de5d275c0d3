//! The shipped binary, as an operator runs it: `serve` prints its URL, the
//! key file is private, the CLI manages accounts and reads the audit log,
//! bad configuration names its key, and no secret reaches a log line
//! (SEC-63, SEC-24, SEC-27).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_domain::factors::totp::otpauth::base32_decode;
use twostep_testkit::real_now;

const BIN: &str = env!("CARGO_BIN_EXE_twostep");

pub(crate) fn twostep(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TWOSTEP_DATA_DIR", data)
        .env("RUST_LOG", "debug")
        .current_dir(data);
    c
}

pub(crate) fn output(cmd: &mut Command, stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) struct Served {
    pub child: Child,
    pub url: String,
    pub logs: Arc<Mutex<String>>,
}

fn serve(data: &Path) -> Served {
    serve_env(data, &[])
}

/// `twostep serve` with extra `TWOSTEP_*` settings.
pub(crate) fn serve_env(data: &Path, env: &[(&str, &str)]) -> Served {
    let mut child = twostep(data)
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let logs = Arc::new(Mutex::new(String::new()));
    let sink = logs.clone();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push_str(&(line + "\n"));
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the URL line");
    let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned) else {
        let _ = child.wait();
        std::thread::sleep(std::time::Duration::from_millis(200));
        panic!("no URL on stdout; the server said:\n{}", logs.lock().expect("lock"));
    };
    logs.lock().expect("lock").push_str(&line);
    Served { child, url, logs }
}

pub(crate) async fn post(http: &reqwest::Client, url: String, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut r = http.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Secrets handed out while exercising the server, to look for in its logs.
struct Handed {
    email: String,
    session: String,
    secrets: Vec<String>,
}

/// Signs up, enrols TOTP, signs in with a code and with a recovery code.
async fn exercise_api(http: &reqwest::Client, base: &str) -> Handed {
    let u = |p: &str| format!("{base}{p}");
    let password = "a long and secret passphrase";
    let email = "operator-test@example.com";
    assert_eq!(post(http, u("/api/v1/accounts"), json!({"email": email, "password": password}), None).await.0, 201);
    let (_, login) = post(http, u("/api/v1/login"), json!({"email": email, "password": password}), None).await;
    let session = login["session_token"].as_str().expect("session").to_owned();
    let (_, enrol) = post(http, u("/api/v1/me/totp"), json!({}), Some(&session)).await;
    let secret_b32 = enrol["secret"].as_str().expect("secret").to_owned();
    let secret = base32_decode(&secret_b32).expect("b32");
    // Confirm with the previous step and sign in with the next: both inside ±1.
    let code = totp(&secret, real_now() - 30, TotpParams::DEFAULT);
    let body = json!({"enrollment_id": enrol["enrollment_id"], "code": code});
    let (status, confirmed) = post(http, u("/api/v1/me/totp/confirm"), body, Some(&session)).await;
    assert_eq!(status, 201, "{confirmed}");
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("s").to_owned())
        .collect();
    let (_, step1) = post(http, u("/api/v1/login"), json!({"email": email, "password": password}), None).await;
    let login_token = step1["login_token"].as_str().expect("login token").to_owned();
    let code = totp(&secret, real_now() + 30, TotpParams::DEFAULT);
    let body = json!({"login_token": login_token, "method": "totp", "code": code});
    let (status, verified) = post(http, u("/api/v1/login/verify"), body, None).await;
    assert_eq!(status, 200, "{verified}");
    let (_, step1) = post(http, u("/api/v1/login"), json!({"email": email, "password": password}), None).await;
    let body = json!({"login_token": step1["login_token"], "method": "recovery_code", "code": codes[0]});
    assert_eq!(post(http, u("/api/v1/login/verify"), body, None).await.0, 200);
    let mut secrets = vec![
        password.to_owned(),
        secret_b32,
        session.clone(),
        login_token,
        verified["session_token"].as_str().expect("token").to_owned(),
    ];
    secrets.extend(codes.iter().cloned());
    secrets.extend(codes.iter().map(|c| c.replace('-', "")));
    Handed { email: email.to_owned(), session, secrets }
}

/// The CLI on the same database while the server runs.
async fn exercise_cli(data: &Path, http: &reqwest::Client, base: &str, handed: &Handed) {
    let email = handed.email.as_str();
    let (ok, out, err) =
        output(twostep(data).args(["user", "create", "cli-made@example.com"]), "another long passphrase\n");
    assert!(ok, "{err}");
    assert!(out.contains("created cli-made@example.com"), "{out}");
    let (ok, out, _) = output(twostep(data).args(["user", "list"]), "");
    assert!(ok && out.contains("cli-made@example.com") && out.contains(email), "{out}");
    let (ok, out, _) = output(twostep(data).args(["user", "show", email]), "");
    assert!(ok && out.contains("two-factor:       on (totp, recovery_code)") && out.contains("9 left"), "{out}");
    let (ok, out, _) = output(twostep(data).args(["audit", "--email", email]), "");
    assert!(ok, "{out}");
    for event in ["account_created", "authenticator_added", "sign_in_succeeded", "recovery_code_used"] {
        assert!(out.contains(event), "{event} missing from:\n{out}");
    }
    let (ok, out, _) = output(twostep(data).args(["user", "disable", email]), "");
    assert!(ok && out.contains("disabled"), "{out}");
    let r = http.get(format!("{base}/api/v1/me")).bearer_auth(&handed.session).send().await.expect("me");
    assert_eq!(r.status().as_u16(), 401, "disabling ends sessions");
    let (ok, _, _) = output(twostep(data).args(["user", "enable", email]), "");
    assert!(ok);
    let (ok, out, _) = output(twostep(data).args(["user", "unlock", email]), "");
    assert!(ok && out.contains("unlocked"), "{out}");
    let (ok, out, _) = output(twostep(data).args(["migrate"]), "");
    assert!(ok && out.contains("up to date"), "{out}");
}

#[tokio::test]
async fn the_binary_serves_manages_accounts_and_never_logs_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let mut server = serve(data);
    // The generated key file is private to its owner.
    let meta = std::fs::metadata(data.join("twostep.key")).expect("key");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);

    let http = reqwest::Client::new();
    let handed = exercise_api(&http, &server.url).await;
    exercise_cli(data, &http, &server.url, &handed).await;

    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    let logs = server.logs.lock().expect("lock").clone();
    assert!(logs.contains("generated a new master key"), "{logs}");
    let key = std::fs::read_to_string(data.join("twostep.key")).expect("key");
    for secret in handed.secrets.iter().map(String::as_str).chain([key.trim()]) {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn an_https_public_url_gets_secure_cookies_and_hsts() {
    // SEC-50: `__Host-` + `Secure` cookies and HSTS when the public URL is https.
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = twostep(dir.path());
    cmd.env("TWOSTEP_PUBLIC_URL", "https://id.example.test");
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("URL line");
    assert!(line.contains("open https://id.example.test/signup"), "{line}");
    let bound = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("bound address");
    let r = reqwest::Client::new().get(format!("{bound}/login")).send().await;
    child.kill().expect("kill");
    let _ = child.wait();
    let r = r.expect("get /login");
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie").to_owned();
    assert!(cookie.starts_with("__Host-twostep_csrf=") && cookie.contains("; Secure"), "{cookie}");
    let hsts = r.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()).expect("hsts").to_owned();
    assert!(hsts.contains("max-age=31536000"), "{hsts}");
}

#[test]
fn config_check_masks_secrets_and_bad_values_name_their_key() {
    let dir = tempfile::tempdir().expect("dir");
    let key = "ab".repeat(32);
    let (ok, out, err) = output(
        twostep(dir.path())
            .env("TWOSTEP_SECRET_KEY", &key)
            .env("TWOSTEP_DATABASE_URL", "postgres://u:hunter2hunter2@127.0.0.1/x")
            .args(["config", "check"]),
        "",
    );
    assert!(ok, "{err}");
    assert!(!out.contains(&key) && !out.contains("hunter2hunter2"), "{out}");
    assert!(out.contains("listen = \"127.0.0.1:8080\""), "{out}");
    assert!(out.contains("sqlite_synchronous = \"normal\""), "{out}");

    for (var, value, named) in [
        ("TWOSTEP_LISTEN", "nonsense", "listen"),
        ("TWOSTEP_PUBLIC_URL", "http://id.example.com", "public_url"),
        ("TWOSTEP_SECRET_KEY", "too-short", "secret_key"),
        ("TWOSTEP_PASSWORD__MIN_LENGTH", "4", "password.min_length"),
        ("TWOSTEP_DATABASE_URL", "mysql://x", "database_url"),
        ("TWOSTEP_SQLITE_SYNCHRONOUS", "sometimes", "sqlite_synchronous"),
    ] {
        let (ok, _, err) = output(twostep(dir.path()).env(var, value).args(["config", "check"]), "");
        assert!(!ok, "{var}={value} should be refused");
        assert!(err.contains(named), "{var}: {err}");
    }
    // A misspelt key in the file is refused too.
    std::fs::write(dir.path().join("twostep.toml"), "lisen = \"127.0.0.1:1\"\n").expect("write");
    let (ok, _, err) = output(twostep(dir.path()).args(["config", "check"]), "");
    assert!(!ok && err.contains("lisen"), "{err}");
}

#[test]
fn serve_creates_the_data_dir_and_database_files_private() {
    // The database holds password hashes and sealed secrets; with the
    // master key beside it, a world-readable file is a readable account store.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("fresh").join("data");
    let mut server = serve_env(dir.path(), &[("TWOSTEP_DATA_DIR", data.to_str().expect("utf-8"))]);
    let mode = |name: &str| {
        let meta = std::fs::metadata(data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        meta.permissions().mode() & 0o777
    };
    let (db, wal, shm, dir_mode) = (mode("twostep.db"), mode("twostep.db-wal"), mode("twostep.db-shm"), mode(""));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    assert_eq!(db, 0o600, "twostep.db is {db:o}");
    assert_eq!(wal, 0o600, "twostep.db-wal is {wal:o}");
    assert_eq!(shm, 0o600, "twostep.db-shm is {shm:o}");
    assert_eq!(dir_mode, 0o700, "the data dir is {dir_mode:o}");
    assert_eq!(mode("twostep.key"), 0o600);
}

#[test]
fn dev_mode_is_refused_beyond_loopback_unless_dev_mode_public() {
    // /dev/outbox shows every code and reset link: never by accident on a
    // public address.
    let dir = tempfile::tempdir().expect("dir");
    let key = "ab".repeat(32);
    let env = [
        ("TWOSTEP_SECRET_KEY", key.as_str()),
        ("TWOSTEP_DEV_MODE", "true"),
        ("TWOSTEP_PUBLIC_URL", "https://id.example.test"),
    ];
    let (ok, _, err) = output(twostep(dir.path()).envs(env).args(["serve", "--listen", "0.0.0.0:0"]), "");
    assert!(!ok, "serve should refuse dev mode on 0.0.0.0");
    assert!(err.contains("dev_mode") && err.contains("/dev/outbox") && err.contains("dev_mode_public"), "{err}");
    let (ok, _, err) =
        output(twostep(dir.path()).envs(env).env("TWOSTEP_LISTEN", "[::]:8080").args(["config", "check"]), "");
    assert!(!ok && err.contains("dev_mode"), "{err}");

    let (ok, out, err) = output(
        twostep(dir.path())
            .envs(env)
            .env("TWOSTEP_LISTEN", "0.0.0.0:8080")
            .env("TWOSTEP_DEV_MODE_PUBLIC", "true")
            .args(["config", "check"]),
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("dev_mode_public = true"), "{out}");
    // On loopback dev mode needs nothing more.
    let (ok, _, err) =
        output(twostep(dir.path()).envs(env).env("TWOSTEP_LISTEN", "127.0.0.1:8080").args(["config", "check"]), "");
    assert!(ok, "{err}");
}

/// Run from the wrong folder, a command that works on data says so and
/// creates nothing: no database, no master key, no data directory.
#[test]
fn commands_on_data_refuse_a_folder_without_a_database_and_create_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    for args in [&["user", "list"][..], &["admin", "list"], &["audit"], &["key", "status"], &["key", "rotate"]] {
        let (ok, out, err) = output(twostep(dir.path()).env("TWOSTEP_DATA_DIR", &data).args(args), "");
        assert!(!ok, "{args:?} exited 0: {out}");
        assert!(
            err.contains("no twostep database at") && err.contains("run from the server's folder or pass --data-dir"),
            "{args:?}: {err}"
        );
    }
    let (ok, out, err) = output(twostep(dir.path()).env("TWOSTEP_DATA_DIR", &data).args(["config", "check"]), "");
    assert!(ok, "{err}");
    assert!(out.contains("# master key: none yet: the first start makes") && !out.contains("NotYet("), "{out}");
    assert!(!data.exists(), "nothing was created");

    // A database but no key (moved without it): refused, not replaced.
    let (ok, out, err) = output(twostep(dir.path()).env("TWOSTEP_DATA_DIR", &data).arg("migrate"), "");
    assert!(ok && out.contains("made a new master key"), "{out}{err}");
    std::fs::remove_file(data.join("twostep.key")).expect("remove key");
    let (ok, _, err) = output(twostep(dir.path()).env("TWOSTEP_DATA_DIR", &data).args(["user", "list"]), "");
    assert!(!ok && err.contains("no master key at"), "{err}");
    assert!(!data.join("twostep.key").exists(), "no new key made");
}

/// A request id is base64url and may begin with `-`: `companion answer`
/// takes it as the id, not as an unknown option.
#[test]
fn companion_answer_takes_an_id_that_begins_with_a_dash() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("none.json");
    let key = key.to_str().expect("utf-8");
    let (ok, _, err) = output(twostep(dir.path()).args(["companion", "answer", "-Fabc", "--deny", "--key", key]), "");
    assert!(!ok && !err.contains("unexpected argument") && err.contains("twostep companion enroll"), "{err}");
}

/// `companion` is a client of some server: its help lists only its own
/// options, not the server's (issue 20, item 9); the server's commands
/// keep them.
#[test]
fn companion_help_lists_only_what_applies() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [&["companion", "--help"][..], &["companion", "enroll", "--help"], &["companion", "watch", "--help"]] {
        let (ok, out, err) = output(twostep(dir.path()).args(args), "");
        assert!(ok, "{args:?}: {err}");
        for server_option in ["--database-url", "--listen", "--data-dir", "--log-format", "--config"] {
            assert!(!out.contains(server_option), "{args:?} lists {server_option}:\n{out}");
        }
    }
    let (ok, out, err) = output(twostep(dir.path()).args(["companion", "enroll", "--help"]), "");
    assert!(ok && out.contains("--name"), "{out}{err}");
    let (ok, out, err) = output(twostep(dir.path()).args(["user", "list", "--help"]), "");
    assert!(ok && out.contains("--database-url") && out.contains("--data-dir"), "{out}{err}");
}
