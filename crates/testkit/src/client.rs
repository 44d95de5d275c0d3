//! Talking to a `TestApp`: JSON calls with a bearer token, pages and forms
//! with the session cookie, and what came back.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;

use crate::app::TestApp;

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

// Asserting is the point of these; callers often drop the response after.
#[expect(clippy::return_self_not_must_use, reason = "a checked response may be discarded")]
impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, body, text }
    }

    #[track_caller]
    pub fn assert_status(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts the contract's error shape with this status and code.
    #[track_caller]
    pub fn assert_error(self, status: u16, code: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(self.body["error"]["code"], code, "unexpected error; body: {}", self.text);
        assert!(self.body["error"]["message"].is_string(), "error message missing: {}", self.text);
        self
    }

    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("no string {key:?} in {}", self.text)).to_owned()
    }
}

/// A page or form answer: status, `Location` (empty if none) and body.
pub type Page = (u16, String, String);

impl TestApp {
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body), token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.http.get(format!("{}{path}", self.url)), token).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(self.http.put(format!("{}{path}", self.url)).json(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.http.delete(format!("{}{path}", self.url)), token).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder, token: Option<&str>) -> Resp {
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    /// GETs a page as a browser would, signed in with `token` if given.
    pub async fn page(&self, path: &str, token: Option<&str>) -> Page {
        let mut r = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.header(COOKIE, format!("twostep_session={t}"));
        }
        page_of(r.send().await.expect("page")).await
    }

    /// POSTs a form from one of this server's own pages (same origin),
    /// signed in with `token`; the form carries its own `csrf` field.
    pub async fn form_post(&self, path: &str, token: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, format!("twostep_session={token}"))
            .header("origin", &self.url)
            .form(form)
            .send()
            .await
            .expect("post");
        page_of(r).await
    }
}

async fn page_of(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let location = r.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, r.text().await.expect("body"))
}
