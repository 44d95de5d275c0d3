//! A local HTTP receiver standing in for Twilio's API, a webhook gateway or
//! a Web Push service: records every request exactly as it arrived and
//! answers as told — by default 201 with a message sid, or the statuses
//! queued with `fail_next`, or always one status and body (`answering`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// What `Recorded::method` holds, so tests need no HTTP crate of their own.
pub use axum::http::Method;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The form-encoded body's fields, by name (a repeated name keeps its last value).
    pub fn form(&self) -> HashMap<String, String> {
        self.fields().into_iter().collect()
    }

    /// The form-encoded body's fields in the order sent, repeats included.
    pub fn fields(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The one field called `name`; fails if it is missing or repeated.
    #[track_caller]
    pub fn field(&self, name: &str) -> String {
        let fields = self.fields();
        let found: Vec<_> = fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
        assert_eq!(found.len(), 1, "exactly one {name} field in {fields:?}");
        found.into_iter().next().unwrap_or_default()
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
    /// Set by `answering`: every answer is this status and JSON body.
    fixed: Option<(u16, String)>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

async fn record(State(s): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut r = s.requests.lock().expect("lock");
        r.push(Recorded { method, path: uri.path().to_owned(), headers, body });
        r.len()
    };
    let planned = s.plan.lock().expect("lock").pop_front();
    if let Some((status, body)) = &s.fixed {
        let status = StatusCode::from_u16(planned.unwrap_or(*status)).expect("status");
        return (status, [(header::CONTENT_TYPE, "application/json")], body.clone()).into_response();
    }
    let status = StatusCode::from_u16(planned.unwrap_or(201)).expect("status");
    if status.is_success() {
        let sent = serde_json::json!({"sid": format!("SM{n:032}"), "id": format!("wh-{n}"), "status": "queued"});
        (status, axum::Json(sent)).into_response()
    } else {
        (status, axum::Json(serde_json::json!({"code": 20500, "message": "Internal Server Error"}))).into_response()
    }
}

impl Receiver {
    /// Answers like Twilio accepting a message (201 and a numbered sid).
    pub async fn start() -> Self {
        Self::serve(Shared::default()).await
    }

    /// Answers every request with `status` and `body` (sent as JSON).
    pub async fn answering(status: u16, body: &str) -> Self {
        StatusCode::from_u16(status).expect("a valid status");
        Self::serve(Shared { fixed: Some((status, body.to_owned())), ..Shared::default() }).await
    }

    async fn serve(shared: Shared) -> Self {
        let shared = Arc::new(shared);
        let app = axum::Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// The next requests get these statuses, in order; then the usual answer again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.plan.lock().expect("lock").extend(statuses);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// The one request that arrived; fails on none or several (a retry).
    #[track_caller]
    pub fn only(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "exactly one request, sent once");
        requests.into_iter().next().expect("one")
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

/// A loopback port with nothing listening: a provider that is down.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    listener.local_addr().expect("local address").port()
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
