//! Answers the framework makes on its own (no route, wrong method, body too
//! large, timeout, a failure) become one of our pages with a way back, or
//! for `/api/` the JSON error shape every API answer has, instead of a bare
//! status the browser shows as "HTTP ERROR 405".

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::pages::Message;
use super::render;

/// What people are told, by status: the heading, the text and the API code.
fn wording(status: StatusCode) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => (
            "That could not be read",
            "What was sent is not what this page expects. Go back, reload the page and try again.",
            "invalid_request",
        ),
        StatusCode::NOT_FOUND => ("Page not found", "There is nothing at this address.", "not_found"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "This page cannot be opened directly",
            "It answers a form, and there is no form to answer here. Start again from the page before it.",
            "method_not_allowed",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "That was too much to send",
            "The form sent more than this server accepts. Go back and send less.",
            "payload_too_large",
        ),
        StatusCode::REQUEST_TIMEOUT => {
            ("That took too long", "The server gave up waiting. Try again in a moment.", "timeout")
        }
        s if s.is_server_error() => (
            "Something went wrong",
            "The server could not finish this. Nothing you did caused it; try again in a moment.",
            "internal",
        ),
        _ => return None,
    })
}

/// Our own pages and JSON errors carry a content type; the framework's
/// bare answers carry none or plain text.
fn is_bare(res: &Response) -> bool {
    res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_none_or(|t| t.starts_with("text/plain"))
}

pub async fn error_pages(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let Some((heading, text, code)) = wording(status).filter(|_| is_bare(&res)) else { return res };
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut page = if api {
        (status, axum::Json(serde_json::json!({"error": {"code": code, "message": text}}))).into_response()
    } else {
        let mut r = render(status, &Message::new(None, heading, text));
        if r.status() != status {
            // The page itself failed: the status still says what happened.
            *r.status_mut() = status;
        }
        r
    };
    if let Some(allow) = allow {
        page.headers_mut().insert(header::ALLOW, allow);
    }
    page
}

/// The site icon, for the tab and for `/favicon.ico`, which browsers ask
/// for on every page.
pub async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        include_str!("../../assets/icon.svg"),
    )
}
