//! The pages' template data.

use askama::Template;

/// The signed-in header: who, and a sign-out form.
#[derive(Clone)]
pub struct Nav {
    pub email: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignUp {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub min_length: usize,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "login_verify.html")]
pub struct LoginVerify {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub method: &'static str,
    pub error: Option<String>,
}

pub struct AuthenticatorRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub last_seen: String,
    pub current: bool,
}

pub struct BrowserRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub until: String,
}

#[derive(Template)]
#[template(path = "security.html")]
pub struct Security {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sessions: Vec<SessionRow>,
    pub browsers: Vec<BrowserRow>,
    pub email: String,
    pub enabled: bool,
    pub authenticators: Vec<AuthenticatorRow>,
    pub recovery_remaining: usize,
    pub notice: Option<String>,
    pub warning: Option<String>,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetup {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub enrollment_id: String,
    pub qr_svg: String,
    pub secret_grouped: String,
    pub name: String,
    pub error: Option<String>,
}

pub struct CodeRow {
    pub code: String,
    pub used: bool,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodes {
    pub nav: Option<Nav>,
    pub heading: &'static str,
    pub intro: &'static str,
    pub codes: Vec<CodeRow>,
    pub done_label: &'static str,
}

#[derive(Template)]
#[template(path = "reauth.html")]
pub struct Reauth {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub next: String,
    pub next_enc: String,
    pub need_password: bool,
    pub need_code: bool,
    pub method: &'static str,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct Confirm {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub heading: &'static str,
    pub text: &'static str,
    pub action: String,
    pub button: &'static str,
    pub danger: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub nav: Option<Nav>,
    pub heading: &'static str,
    pub text: &'static str,
}

impl Message {
    pub fn new(nav: Option<Nav>, heading: &'static str, message: &'static str) -> Self {
        Self { nav, heading, text: message }
    }
}

/// A date for people: "2026-11-23 19:05 UTC".
pub fn human_time(t: twostep_domain::time::Timestamp) -> String {
    let s = t.rfc3339();
    s.get(..16).map_or(s.clone(), |d| format!("{} UTC", d.replace('T', " ")))
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPassword {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sent: bool,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPassword {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub token: String,
    pub valid: bool,
    pub error: Option<String>,
    pub min_length: usize,
}

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePassword {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub error: Option<String>,
    pub min_length: usize,
}

pub struct LogRow {
    pub when: String,
    pub event: String,
    pub ok: bool,
    pub ip: String,
    pub device: String,
}

#[derive(Template)]
#[template(path = "security_log.html")]
pub struct SecurityLog {
    pub nav: Option<Nav>,
    pub entries: Vec<LogRow>,
}
