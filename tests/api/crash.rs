//! A crash in the middle of sign-ins (issue 21): the server is killed with
//! SIGKILL while second steps are in flight, and after a restart every
//! sign-in it answered still has its session and its audit row, no session
//! exists without one, and every wrong code it answered has its failure in
//! the log (SEC-63). Runs the real binary on SQLite (the
//! shipped `synchronous = NORMAL`) and on PostgreSQL.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use twostep_testkit::PgSchema;
use twostep_testkit::real_now;

use crate::binary::{Served, output, serve_env, twostep};

const KEY: &str = "63726173682074657374206b65792c206e6f7420666f72207265616c20757365";
const ACCOUNTS: usize = 240;
/// Sign-ins answered before the kill: enough that many more are in flight
/// (wrong codes, answered faster, are mostly in by then).
const KILL_AFTER: usize = 30;
/// Second steps in flight at once: another is sent only when an answer has
/// been read, so however slowly this test runs beside the server, the kill
/// lands with these in flight and most never sent.
const IN_FLIGHT: usize = 32;

fn cli(data: &Path, database: &str, args: &[&str]) -> String {
    let mut cmd = twostep(data);
    cmd.env("TWOSTEP_DATABASE_URL", database).env("TWOSTEP_SECRET_KEY", KEY).args(args);
    let (ok, out, err) = output(&mut cmd, "");
    assert!(ok, "twostep {args:?} failed:\n{out}{err}");
    out
}

/// One seeded account's login token and the code of the current step.
struct Attempt {
    token: String,
    code: String,
    /// The seeded account's number (its id begins with it, in hex).
    account: usize,
}

/// What the server answered.
enum Answer {
    SignedIn(String),
    WrongCode(usize),
    /// No whole answer came (the kill cut it).
    Unanswered,
    /// An answer this attempt should never get.
    Unexpected(String),
}

fn attempts(file: &Path) -> Vec<Attempt> {
    let step = u64::try_from(real_now()).expect("now") / 30;
    std::fs::read_to_string(file)
        .expect("token file")
        .lines()
        .map(|l| {
            // `token account s0 wrong_code code(s0) … code(s0+9)`; every
            // other account tries its wrong code.
            let f: Vec<&str> = l.split_whitespace().collect();
            let s0: u64 = f[2].parse().expect("s0");
            let account: usize = f[1].parse().expect("account");
            let idx = usize::try_from(step - s0).expect("step after s0");
            let code = if account % 2 == 1 { f[3] } else { f[4 + idx] };
            Attempt { token: f[0].to_owned(), code: code.to_owned(), account }
        })
        .collect()
}

async fn sign_ins_survive_a_kill(database: &str) {
    let data = tempfile::tempdir().expect("dir");
    let n = ACCOUNTS.to_string();
    cli(data.path(), database, &["dev", "seed", "--accounts", &n, "--totp"]);
    let file = data.path().join("tokens.txt");
    let file_arg = file.display().to_string();
    cli(data.path(), database, &["dev", "login-tokens", "--accounts", &n, "--count", &n, "--out", &file_arg]);
    let env = [("TWOSTEP_DATABASE_URL", database), ("TWOSTEP_SECRET_KEY", KEY)];
    let mut served = serve_env(data.path(), &env);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");

    let (answered, wrong) = burst_until_killed(&mut served, &http, &file).await;
    assert!(
        !answered.is_empty() && !wrong.is_empty(),
        "both kinds were answered before the kill: {} sign-ins, {} wrong codes",
        answered.len(),
        wrong.len()
    );

    // After the restart: every answered session is live...
    let mut served = serve_env(data.path(), &env);
    let mut lost = 0;
    for token in &answered {
        let r = http.get(format!("{}/api/v1/me", served.url)).bearer_auth(token).send().await.expect("me");
        lost += usize::from(r.status().as_u16() != 200);
    }
    let _ = served.child.kill();
    let _ = served.child.wait();
    assert_eq!(lost, 0, "answered sign-ins whose session is gone after the restart");

    // ...and the log has exactly one success per session, account by account.
    let (sessions, audited, failed) = count_rows(database).await;
    assert!(sessions.len() >= answered.len(), "{} sessions for {} answers", sessions.len(), answered.len());
    let unaudited: Vec<_> = sessions.difference(&audited).collect();
    let sessionless: Vec<_> = audited.difference(&sessions).collect();
    assert!(
        unaudited.is_empty() && sessionless.is_empty(),
        "of {} sessions, {} have no audit row; {} audited sign-ins have no session",
        sessions.len(),
        unaudited.len(),
        sessionless.len()
    );
    // Every wrong code answered left its failure in the log.
    let unlogged: Vec<_> =
        wrong.iter().filter(|n| !failed.iter().any(|id| id.starts_with(&format!("{n:08x}-")))).collect();
    assert!(unlogged.is_empty(), "{} of {} answered wrong codes have no audit row", unlogged.len(), wrong.len());
}

/// Sends every attempt, `IN_FLIGHT` at a time, and kills the server with
/// SIGKILL after `KILL_AFTER` sign-ins are answered: the session tokens
/// answered and the accounts told their code was wrong, counting answers
/// already on their way when the kill landed.
async fn burst_until_killed(served: &mut Served, http: &reqwest::Client, file: &Path) -> (Vec<String>, Vec<usize>) {
    // A burst kept at `IN_FLIGHT`; the server dies after the first answers.
    let (answers, mut answered_rx) = tokio::sync::mpsc::unbounded_channel::<Answer>();
    let url = format!("{}/api/v1/login/verify", served.url);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let tasks: Vec<_> = attempts(file)
        .into_iter()
        .map(|a| {
            let (http, url, answers, gate) = (http.clone(), url.clone(), answers.clone(), gate.clone());
            tokio::spawn(async move {
                // Closed at the kill: what has not been sent never is.
                let Ok(permit) = gate.acquire().await else { return };
                permit.forget();
                let body = json!({"login_token": a.token, "method": "totp", "code": a.code});
                let answer = match http.post(url).json(&body).send().await {
                    // An answer is the whole body: a cut one was never answered.
                    Ok(r) => match (r.status().as_u16(), r.json::<Value>().await) {
                        (401, Ok(_)) if a.account % 2 == 1 => Answer::WrongCode(a.account),
                        (200, Ok(v)) if a.account % 2 == 0 => match v["session_token"].as_str() {
                            Some(t) => Answer::SignedIn(t.to_owned()),
                            None => Answer::Unexpected(format!("no session token: {v}")),
                        },
                        (_, Err(_)) => Answer::Unanswered,
                        (status, Ok(v)) => Answer::Unexpected(format!("account {}: {status} {v}", a.account)),
                    },
                    Err(_) => Answer::Unanswered,
                };
                let _ = answers.send(answer);
            })
        })
        .collect();
    drop(answers);
    let mut answered = Vec::new();
    while let Some(answer) = answered_rx.recv().await {
        match answer {
            Answer::Unanswered => {
                gate.add_permits(1);
                continue;
            }
            Answer::Unexpected(what) => {
                let _ = served.child.kill();
                panic!("a second step answered wrongly before the kill: {what}");
            }
            answer => answered.push(answer),
        }
        if answered.iter().filter(|a| matches!(a, Answer::SignedIn(_))).count() == KILL_AFTER {
            served.child.kill().expect("SIGKILL");
            gate.close();
            break;
        }
        gate.add_permits(1);
    }
    // Answers already on their way when the kill landed count too.
    for t in tasks {
        if let Err(e) = t.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    while let Ok(answer) = answered_rx.try_recv() {
        match answer {
            Answer::Unexpected(what) => panic!("a second step answered wrongly: {what}"),
            Answer::Unanswered => {}
            answer => answered.push(answer),
        }
    }
    let _ = served.child.wait();
    assert!(answered.len() < ACCOUNTS, "the kill came before every sign-in was answered");
    let (answered, wrong): (Vec<_>, Vec<_>) = answered.into_iter().partition(|a| matches!(a, Answer::SignedIn(_)));
    let answered: Vec<String> =
        answered.into_iter().filter_map(|a| if let Answer::SignedIn(t) = a { Some(t) } else { None }).collect();
    let wrong: Vec<usize> =
        wrong.into_iter().filter_map(|a| if let Answer::WrongCode(n) = a { Some(n) } else { None }).collect();
    (answered, wrong)
}

/// The accounts holding a session, those with a successful sign-in in the
/// audit log (each account signs in at most once here), and those with a
/// failed second step.
async fn count_rows(database: &str) -> (HashSet<String>, HashSet<String>, Vec<String>) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(database).await.expect("open the database");
    let sessions: Vec<String> =
        sqlx::query_scalar("SELECT account_id FROM sessions").fetch_all(&mut conn).await.expect("sessions");
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT account_id FROM audit_log WHERE kind = 'sign_in_succeeded' AND success = 1")
            .fetch_all(&mut conn)
            .await
            .expect("audit log");
    assert_eq!(audited.len(), audited.iter().collect::<HashSet<_>>().len(), "one success per account");
    let failed: Vec<String> =
        sqlx::query_scalar("SELECT account_id FROM audit_log WHERE kind = 'sign_in_second_factor' AND success = 0")
            .fetch_all(&mut conn)
            .await
            .expect("audit log");
    (sessions.into_iter().collect(), audited.into_iter().collect(), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_sign_in_burst_loses_no_answered_sign_in_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}", dir.path().join("twostep.db").display());
    sign_ins_survive_a_kill(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_sign_in_burst_loses_no_answered_sign_in_postgres() {
    let schema = PgSchema::create().await;
    sign_ins_survive_a_kill(&schema.url).await;
}
