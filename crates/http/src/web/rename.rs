//! Renaming one of the account's authenticators (a companion device, a
//! security key): one page and one form; each kind finds its own and saves.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::error::not_found_page;
use super::pages::Rename;
use super::{WebSession, encode, render};

/// What is renamed: the page's heading, where its pages live and the
/// Security page's section to go back to.
pub struct Renamed {
    pub heading: &'static str,
    /// `/security/keys`: the form posts to `{base}/{id}/rename`.
    pub base: &'static str,
    pub back: &'static str,
}

pub fn view(
    session: &WebSession,
    status: StatusCode,
    what: &Renamed,
    id: &str,
    name: String,
    error: Option<String>,
) -> Response {
    let action = format!("{}/{}/rename", what.base, encode(id));
    let (nav, csrf) = (session.nav(), session.csrf.clone());
    render(status, &Rename { nav, csrf, heading: what.heading, action, back: what.back, name, error })
}

/// The page for the authenticator `found` by its kind's lookup (its current name).
pub fn page(session: &WebSession, what: &Renamed, id: &str, found: Result<Option<String>, Response>) -> Response {
    match found {
        Ok(Some(name)) => view(session, StatusCode::OK, what, id, name, None),
        Ok(None) => not_found_page(),
        Err(res) => res,
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
}

/// What was typed, cut to a length worth showing back.
pub fn typed(name: &str) -> String {
    name.chars().take(200).collect()
}

super::csrf_field!(RenameForm);
