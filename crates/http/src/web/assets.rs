//! The stylesheet and script, compiled in. Cached for a day: they change
//! only with the binary.

use axum::http::header;
use axum::response::IntoResponse;

const CACHE: &str = "public, max-age=86400";

pub async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, CACHE)],
        include_str!("../../assets/app.css"),
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, CACHE)],
        include_str!("../../assets/app.js"),
    )
}
