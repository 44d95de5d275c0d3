//! The companion page (`/companion`): a small installable web app that
//! pairs a phone as a push device and answers sign-in requests. Its script
//! keeps a non-extractable ECDSA P-256 key in IndexedDB and signs every
//! request to the device routes (`api::push`). A service worker shows a
//! notification when Web Push wakes it. Everything is served from here: no
//! CDN, no inline script (CSP `default-src 'self'`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::Companion;
use super::render;

/// The page a pairing link opens; the code travels in the fragment, so it
/// never reaches a server log or a `Referer`.
pub fn pairing_url(public_url: &str, code: &str) -> String {
    format!("{}/companion#pair={code}", public_url.trim_end_matches('/'))
}

/// Assets change only with the binary.
const CACHE: &str = "public, max-age=86400";

pub async fn page() -> Response {
    render(StatusCode::OK, &Companion { nav: None })
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, CACHE)],
        include_str!("../../assets/companion.js"),
    )
}

/// Served at the root so that its scope may be `/companion`. Browsers
/// check it for updates on their own; `no-cache` makes them ask us.
pub async fn service_worker() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../../assets/companion-sw.js"),
    )
}

pub async fn manifest() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/manifest+json"), (header::CACHE_CONTROL, CACHE)],
        include_str!("../../assets/companion.webmanifest"),
    )
}

pub async fn icon() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, CACHE)],
        include_str!("../../assets/companion-icon.svg"),
    )
}
