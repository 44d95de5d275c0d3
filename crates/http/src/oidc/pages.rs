//! The provider's pages' template data.

use askama::Template;

use crate::web::Nav;

#[derive(Template)]
#[template(path = "oidc_consent.html")]
pub struct Consent {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub client_name: String,
    pub account_email: String,
    pub email: bool,
    pub groups: bool,
    pub offline: bool,
    pub redirect_host: String,
    /// The authorization request, carried through the form unchanged.
    pub params: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "oidc_error.html")]
pub struct OidcErrorPage {
    pub nav: Option<Nav>,
    pub message: String,
}

pub struct AppRow {
    pub id: String,
    pub name: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "oidc_apps.html")]
pub struct AppsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub apps: Vec<AppRow>,
    pub revoked: bool,
}

pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub rules: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_oidc.html")]
pub struct AdminClientsPage {
    pub nav: Option<Nav>,
    pub issuer: String,
    pub clients: Vec<ClientRow>,
}
