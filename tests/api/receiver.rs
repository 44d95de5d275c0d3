//! A local HTTP receiver standing in for Twilio's API or a webhook
//! gateway: records every request exactly as it arrived and answers as told
//! (201 with a message sid by default, or the statuses queued with `fail_next`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The form-encoded body's fields.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    plan: Mutex<VecDeque<u16>>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

async fn record(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let n = {
        let mut r = s.requests.lock().expect("lock");
        r.push(Recorded { method, path: uri.path().to_owned(), headers, body });
        r.len()
    };
    let status = s.plan.lock().expect("lock").pop_front().unwrap_or(201);
    let status = StatusCode::from_u16(status).expect("status");
    if status.is_success() {
        (
            status,
            axum::Json(serde_json::json!({"sid": format!("SM{n:032}"), "id": format!("wh-{n}"), "status": "queued"})),
        )
    } else {
        (status, axum::Json(serde_json::json!({"code": 20500, "message": "Internal Server Error"})))
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// The next requests get these statuses, in order; then 201 again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.plan.lock().expect("lock").extend(statuses);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Waits (up to 10 s) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..200 {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests at the receiver, got {}", self.requests().len());
    }

    /// The 6-digit code in the latest request (SMS `Body`, call `Twiml`,
    /// webhook `message`).
    pub async fn code(&self, n: usize) -> String {
        let r = self.wait_for(n).await;
        let last = &r[n - 1];
        let form = last.form();
        let text = form.get("Body").cloned().unwrap_or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&last.body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        six_digits(&text).unwrap_or_else(|| panic!("no code in {text:?}"))
    }
}

/// The first run of exactly six digits in `text`.
pub fn six_digits(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The code in a verification mail: the `code=` parameter of its link
/// (the link's account id may hold six digits in a row too).
pub fn link_code(text: &str) -> String {
    let after = text.split_once("&code=").map_or_else(|| panic!("no link in {text:?}"), |(_, rest)| rest);
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{text:?}");
    code
}
