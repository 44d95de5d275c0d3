//! JSON request bodies of the API, through the real extractor `twostep_http::extract::ApiJson`
//! (Content-Type check, the empty-body-is-`{}` rule, `serde_json`, the error mapping to a status).
//!
//! LIMITATION: the API's request structs (`SignUpRequest`, `VerifyRequest`, …) live in private
//! modules of `twostep-http`, so they cannot be named from here. The target deserialises into local
//! structs that mirror them field for field (same names, types and optionality; no
//! `deny_unknown_fields`, like the originals). When a request struct changes, change its mirror
//! below; scripts/api-fuzz (schemathesis against the live server) covers the real structs.
//!
//! Properties: no panic; a rejection is 400 `invalid_request` or 415 `unsupported_media_type`
//! (with the contract's error body), never anything else; and the extractor accepts exactly what
//! its documented rule accepts.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use twostep_http::extract::ApiJson;

/// `POST /api/v1/accounts`, `POST /api/v1/login`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Credentials {
    email: String,
    password: String,
}

/// `POST /api/v1/login/verify`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Verify {
    login_token: String,
    method: String,
    code: String,
}

/// `POST /api/v1/me/totp/confirm`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Confirm {
    enrollment_id: String,
    code: String,
    name: Option<String>,
}

/// `POST /api/v1/me/reauth`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Reauth {
    password: Option<String>,
    method: Option<String>,
    code: Option<String>,
}

/// `POST /api/v1/password/forgot`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Forgot {
    email: String,
}

/// `POST /api/v1/password/reset`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Reset {
    token: String,
    password: String,
}

/// `POST /api/v1/me/password`.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Arbitrary, Debug)]
enum ContentType<'a> {
    None,
    Json,
    JsonUtf8,
    ProblemJson,
    Text,
    Form,
    Raw(&'a str),
}

impl ContentType<'_> {
    fn header(&self) -> Option<HeaderValue> {
        let s = match self {
            Self::None => return None,
            Self::Json => "application/json",
            Self::JsonUtf8 => "Application/JSON ; charset=utf-8",
            Self::ProblemJson => "application/problem+json",
            Self::Text => "text/plain",
            Self::Form => "application/x-www-form-urlencoded",
            Self::Raw(s) => s,
        };
        HeaderValue::from_str(s).ok()
    }
}

/// A 4-byte variant tag for the Content-Type (the `Raw` variant is followed by a length-prefixed
/// string), then the body, which takes the rest of the input; `fuzz/make_seeds.py` writes seeds.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    content_type: ContentType<'a>,
    body: &'a [u8],
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"));

/// The documented rule (`extract.rs`), written independently.
fn should_accept<T: DeserializeOwned>(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<(), StatusCode> {
    let is_json = content_type.and_then(|v| v.to_str().ok()).map(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    if body != b"{}" && is_json != Some(true) {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    serde_json::from_slice::<T>(body).map(|_| ()).map_err(|_| StatusCode::BAD_REQUEST)
}

fn check<T: DeserializeOwned + Send + 'static>(input: &Input<'_>) {
    let content_type = input.content_type.header();
    let mut request = Request::builder().method("POST").uri("/api/v1/fuzz");
    if let Some(v) = &content_type {
        request = request.header(header::CONTENT_TYPE, v.clone());
    }
    let request = request.body(Body::from(input.body.to_vec())).expect("a valid request");
    let got = RUNTIME.block_on(ApiJson::<T>::from_request(request, &()));
    let want = should_accept::<T>(content_type.as_ref(), input.body);
    match got {
        Ok(_) => assert_eq!(want, Ok(()), "accepted {input:?}"),
        Err(e) => {
            let (status, code) = e.status_and_code();
            assert!(
                matches!((status.as_u16(), code), (400, "invalid_request") | (415, "unsupported_media_type")),
                "unexpected rejection {status} {code}"
            );
            assert_eq!(want, Err(status), "rejected {input:?} with {status}");
            let response = e.into_response();
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
                Some(&b"application/json"[..])
            );
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    check::<Credentials>(&input);
    check::<Verify>(&input);
    check::<Confirm>(&input);
    check::<Reauth>(&input);
    check::<Forgot>(&input);
    check::<Reset>(&input);
    check::<ChangePassword>(&input);
    check::<serde_json::Value>(&input);
});
