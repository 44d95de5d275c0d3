//! Operations (issue 19): two `twostep serve` processes on one PostgreSQL
//! database. The first is stopped with SIGTERM while it holds an outbox
//! lease on a message its relay never finishes; it hands the lease back
//! and exits 0 at once, and the second instance sends the message on its
//! next poll — long before the lease (`LEASE_SECS`) or the SMTP timeout
//! would have let it. The store's hand-back statement is checked on both
//! backends too.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use twostep_domain::notify::outbox::LEASE_SECS;
use twostep_testkit::{Db, PgSchema, SmtpSink};

use crate::binary::{post, serve_env};
use crate::ops::{exit_within, terminate};

/// The SMTP sender's timeout (`crates/delivery/src/smtp.rs`): an instance
/// that waited for its stuck relay would hold the message this long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A relay that takes connections and never says a word: a delivery stuck
/// in flight. Counts the connections it took.
fn stuck_relay() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("smtp://{}", listener.local_addr().expect("addr"));
    let taken = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&taken);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            count.fetch_add(1, Ordering::SeqCst);
            // Held open, silent, until the client gives up.
            std::thread::spawn(move || {
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    (url, taken)
}

async fn row(url: &str) -> (String, i64, Option<String>) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    let r = sqlx::query("SELECT status, CAST(attempts AS BIGINT) AS attempts, provider FROM outbox")
        .fetch_one(&mut c)
        .await
        .expect("one message");
    (r.get("status"), r.get("attempts"), r.get("provider"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_outbox_leases_to_the_other_instance_at_once() {
    let pg = PgSchema::create().await;
    let dir = tempfile::tempdir().expect("dir");
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).expect("a");
    std::fs::create_dir_all(&b_dir).expect("b");
    let (relay, taken) = stuck_relay();
    let a_env = [
        ("TWOSTEP_DATABASE_URL", pg.url.as_str()),
        ("TWOSTEP_SMTP_URL", relay.as_str()),
        ("TWOSTEP_DELIVERY_POLL_MS", "100"),
        ("TWOSTEP_SHUTDOWN__TIMEOUT_SECS", "10"),
    ];
    let mut a = serve_env(&a_dir, &a_env);
    let http = reqwest::Client::new();

    // The sign-up's verification mail: A claims it and its relay stalls.
    let body = json!({"email": "handed-over@example.com", "password": "a long and secret passphrase"});
    assert_eq!(post(&http, format!("{}/api/v1/accounts", a.url), body, None).await.0, 201);
    let mut waited = 0;
    while taken.load(Ordering::SeqCst) == 0 {
        assert!(waited < 200, "A never tried to deliver");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let claimed = Instant::now();
    assert_eq!(row(&pg.url).await.0, "pending");

    // B: the same database and master key, a relay that works.
    std::fs::copy(a_dir.join("twostep.key"), b_dir.join("twostep.key")).expect("key");
    let sink = SmtpSink::start();
    let b_env = [
        ("TWOSTEP_DATABASE_URL", pg.url.as_str()),
        ("TWOSTEP_SMTP_URL", sink.url.as_str()),
        ("TWOSTEP_DELIVERY_POLL_MS", "100"),
    ];
    let mut b = serve_env(&b_dir, &b_env);
    // While A holds the lease, B's polls leave the message alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(sink.messages().is_empty(), "B sent a message A holds");

    terminate(&a);
    let signalled = Instant::now();
    let status = exit_within(&mut a, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // A did not wait for its stuck relay: before this change it held the
    // pass until the relay timed out and so missed its 10 s deadline.
    assert!(signalled.elapsed() < Duration::from_secs(8), "A took {:?} to stop", signalled.elapsed());
    let logs = a.logs.lock().expect("lock").clone();
    assert!(logs.contains("leases handed back") && logs.contains("released=1"), "{logs}");

    let mail = sink.wait_for(1).await;
    let handed_over = claimed.elapsed();
    assert_eq!(mail.len(), 1);
    assert!(mail[0]["to"].to_string().contains("handed-over@example.com"), "{:?}", mail[0]);
    // Sooner than any wait a kept lease would have meant: the lease running
    // out, or A's relay timing out and the row coming back for a retry.
    let lease = Duration::from_secs(LEASE_SECS.unsigned_abs());
    assert!(handed_over < SMTP_TIMEOUT && handed_over < lease, "B sent it {handed_over:?} after A took it");
    assert!(signalled.elapsed() < Duration::from_secs(8), "B took {:?} after the SIGTERM", signalled.elapsed());
    // B's try is the message's first: A's, cut short, was handed back unrecorded.
    let mut recorded = row(&pg.url).await;
    for _ in 0..100 {
        if recorded.0 == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        recorded = row(&pg.url).await;
    }
    assert_eq!(recorded, ("sent".to_owned(), 1, Some("smtp".to_owned())));
    b.child.kill().expect("kill");
    b.child.wait().expect("wait");
}

/// The hand-back on the store alone: one statement that clears only the
/// leases still this pass's — not a row finished meanwhile, nor one another
/// worker took over after our lease ran out.
async fn a_hand_back_clears_only_the_leases_still_held(db: Db) {
    use twostep_domain::notify::store::{Channel, OutboxFinish, OutboxRecord, OutboxStatus, OutboxStore};
    use twostep_domain::time::Timestamp;

    let dir = tempfile::tempdir().expect("dir");
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(PgSchema::create().await),
    };
    let url = pg.as_ref().map_or_else(|| format!("sqlite://{}", dir.path().join("t.db").display()), |p| p.url.clone());
    let store = twostep_store::SqlStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let now = Timestamp::from_secs(1_000_000);
    let row = |id: &str| OutboxRecord {
        id: id.to_owned(),
        account_id: None,
        channel: Channel::Email,
        payload_sealed: vec![1, 2, 3],
        status: OutboxStatus::Pending,
        attempts: 0,
        created_at: now,
        next_attempt_at: now,
        expires_at: now.plus_secs(600),
        locked_until: None,
        provider: None,
        provider_id: None,
        last_error: None,
        finished_at: None,
    };
    let lease = now.plus_secs(LEASE_SECS);
    for id in ["unfinished", "finished", "taken-over", "not-ours"] {
        store.insert_outbox(&row(id)).await.expect("insert");
    }
    for id in ["unfinished", "finished", "taken-over"] {
        assert!(store.claim_outbox(id, now, lease).await.expect("claim"), "{id}");
    }
    let done = OutboxFinish {
        status: OutboxStatus::Sent,
        attempts: 1,
        at: now,
        provider: "smtp".into(),
        provider_id: None,
        error: None,
    };
    store.finish_outbox("finished", &done).await.expect("finish");
    // Our lease ran out and another worker took the row with its own.
    let later = lease.plus_secs(1);
    assert!(store.claim_outbox("taken-over", later, later.plus_secs(LEASE_SECS)).await.expect("claim"));
    let theirs = later.plus_secs(LEASE_SECS);

    let ids: Vec<String> = ["unfinished", "finished", "taken-over", "not-ours"].map(str::to_owned).to_vec();
    assert_eq!(store.release_outbox(&ids, lease).await.expect("release"), 1);
    assert_eq!(store.release_outbox(&[], lease).await.expect("nothing"), 0);
    let rows = store.recent_outbox(10).await.expect("rows");
    let state = |id: &str| {
        let r = rows.iter().find(|r| r.id == id).expect("row");
        (r.status, r.locked_until)
    };
    assert_eq!(state("unfinished"), (OutboxStatus::Pending, None));
    assert_eq!(state("finished"), (OutboxStatus::Sent, None));
    assert_eq!(state("taken-over"), (OutboxStatus::Pending, Some(theirs)));
    assert_eq!(state("not-ours"), (OutboxStatus::Pending, None));
    // Handed back, the row is due again for any worker.
    assert!(store.due_outbox(now, 10).await.expect("due").iter().any(|r| r.id == "unfinished"));
    store.close().await;
}

twostep_testkit::each_backend!(a_hand_back_clears_only_the_leases_still_held);
