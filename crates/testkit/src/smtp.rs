//! The aiosmtpd sink (`smtp_sink.py` beside this crate) as the tests see it:
//! a real SMTP server on loopback that keeps every message as JSON.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    pub url: String,
}

impl SmtpSink {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the SMTP sink (pip install aiosmtpd; ./scripts/test does)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SMTP sink did not start (is aiosmtpd installed?): {line:?}"));
        Self { child, dir, url: format!("smtp://127.0.0.1:{port}") }
    }

    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")).collect()
    }

    /// Waits (up to 10 s) for a message whose subject contains `part`; returns it.
    pub async fn wait_for_subject(&self, part: &str) -> Value {
        for _ in 0..200 {
            if let Some(m) = self.with_subject(part).into_iter().next_back() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail with {part:?} in its subject among {:?}",
            self.messages().iter().map(|m| m["subject"].clone()).collect::<Vec<_>>()
        );
    }

    /// The messages whose subject contains `part`, in arrival order.
    pub fn with_subject(&self, part: &str) -> Vec<Value> {
        self.messages().into_iter().filter(|m| m["subject"].as_str().is_some_and(|s| s.contains(part))).collect()
    }

    /// Waits (up to 10 s) until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mails, got {}", self.messages().len());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
