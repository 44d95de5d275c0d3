//! Reading and writing our cookies. Session cookies carry no expiry (they
//! end with the browser and, server-side, with the session), `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, no `Domain`, and `Secure` unless the public URL
//! is plain http on loopback (§2.11).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::WebConfig;

pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value. `max_age` of `None` makes a browser-session cookie.
pub fn set(web: &WebConfig, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if web.secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str("; Max-Age=");
        c.push_str(&age.to_string());
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear(web: &WebConfig, name: &str) -> HeaderValue {
    set(web, name, "", Some(0))
}
