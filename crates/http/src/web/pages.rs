//! The pages' template data.

use askama::Template;
use twostep_domain::policy::allowlist::AllowEntry;

/// The signed-in header: who, and a sign-out form.
#[derive(Clone)]
pub struct Nav {
    pub email: String,
    pub csrf: String,
    /// The date the operator's 2FA mandate starts, while it is upcoming and
    /// the account has no 2FA: every page shows a banner.
    pub mandate: Option<String>,
    /// The account is an administrator: the header links to `/admin`.
    pub admin: bool,
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
    /// "Sign in with a passkey" and the address field's passkey autofill.
    pub passkeys: bool,
}

/// Another way to prove the second factor, offered under the code field.
pub struct Choice {
    pub method: &'static str,
    pub label: String,
    /// A button that sends a code (SMS, call, e-mail) rather than a link.
    pub sends: bool,
    pub href: String,
}

/// The button that sends a code by SMS, voice or e-mail.
pub struct SendButton {
    pub label: &'static str,
    /// Where the last code went, masked, once one was sent.
    pub sent_to: Option<String>,
    /// Seconds before asking again makes sense; app.js counts them down.
    pub wait: i64,
}

#[derive(Template)]
#[template(path = "login_verify.html")]
pub struct LoginVerify {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub method: &'static str,
    pub code_label: &'static str,
    pub error: Option<String>,
    /// Set for methods whose code is sent.
    pub send: Option<SendButton>,
    pub others: Vec<Choice>,
    /// A security key's ceremony: `navigator.credentials.get()` options, as JSON.
    pub key_options: Option<String>,
}

pub struct AuthenticatorRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// A security key or passkey as the Security page lists it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    /// "Passkey" or "Security key".
    pub kind: &'static str,
    /// Synced between devices (a password manager's passkey), or bound to this one key.
    pub synced: bool,
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
    /// Security keys and passkeys.
    pub keys: Vec<KeyRow>,
    /// Companion devices (push).
    pub push_devices: Vec<PushRow>,
    pub recovery_remaining: usize,
    pub notice: Option<String>,
    pub warning: Option<String>,
    /// Whether phone numbers can be added here at all.
    pub phone_available: bool,
    /// The verified number, masked.
    pub phone: Option<String>,
    pub email_verified: bool,
    /// Why the verification e-mail was not sent or its code refused.
    pub email_error: Option<String>,
    /// Seconds before another verification e-mail may be asked for.
    pub email_wait: i64,
    /// The IP allow-list; empty: no restriction.
    pub allowlist: Vec<AllowRow>,
    /// "Asked first at sign-in", when there is a choice.
    pub first: FirstMethods,
    /// Why 2FA cannot be turned off, naming who requires it ("Your
    /// organisation “Acme” requires two-factor authentication, so…"); the
    /// button is not offered then.
    pub kept: Option<String>,
    /// The latest few entries of the security log.
    pub log: Vec<LogRow>,
}

/// The methods sign-in may ask for first (name, words, chosen), and whether
/// the account chose one at all.
#[derive(Default)]
pub struct FirstMethods {
    pub options: Vec<(&'static str, &'static str, bool)>,
    pub chosen: bool,
}

pub struct Country {
    pub code: &'static str,
    pub name: &'static str,
    pub calling: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "phone_setup.html")]
pub struct PhoneSetup {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// Changing an existing number rather than adding one.
    pub changing: bool,
    pub countries: Vec<Country>,
    pub number: String,
    pub voice: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "phone_verify.html")]
pub struct PhoneVerify {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// What was typed on the set-up page, for the resend button.
    pub country: String,
    pub number: String,
    pub channel: &'static str,
    pub send: SendButton,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "verify_email.html")]
pub struct VerifyEmail {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub account: String,
    pub code: String,
}

pub struct OutboxRow {
    pub when: String,
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub status: &'static str,
    pub attempts: i64,
    pub error: String,
}

#[derive(Template)]
#[template(path = "dev_outbox.html")]
pub struct DevOutbox {
    pub nav: Option<Nav>,
    pub rows: Vec<OutboxRow>,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetup {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub enrollment_id: String,
    pub qr_svg: String,
    pub secret_grouped: String,
    /// The key without spaces, for the copy button.
    pub secret: String,
    /// `otpauth://…`: opens the authenticator app on a phone.
    pub otpauth_uri: String,
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
    /// For the download, a POST: it is audited and mailed (SEC-55).
    pub csrf: String,
    pub heading: &'static str,
    pub intro: &'static str,
    pub codes: Vec<CodeRow>,
    pub done_label: &'static str,
    /// New codes: leaving asks to confirm they were saved.
    pub confirm_saved: bool,
}

#[derive(Template)]
#[template(path = "reauth.html")]
pub struct Reauth {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub next: String,
    pub need_password: bool,
    pub need_code: bool,
    pub method: &'static str,
    pub code_label: &'static str,
    pub error: Option<String>,
    /// Set for methods whose code is sent.
    pub send: Option<SendButton>,
    /// Where a code would go, masked, before one is sent.
    pub destination: Option<String>,
    pub others: Vec<Choice>,
    /// A security key's ceremony: `navigator.credentials.get()` options, as JSON.
    pub key_options: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct Confirm {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub heading: std::borrow::Cow<'static, str>,
    pub text: std::borrow::Cow<'static, str>,
    pub action: String,
    pub button: &'static str,
    pub danger: bool,
    /// Where "Cancel" goes back to.
    pub cancel: std::borrow::Cow<'static, str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub nav: Option<Nav>,
    pub heading: &'static str,
    pub text: std::borrow::Cow<'static, str>,
    /// Where to go on, and the link's words; the home page by default.
    pub link: (&'static str, &'static str),
}

impl Message {
    pub fn new(nav: Option<Nav>, heading: &'static str, message: &'static str) -> Self {
        Self { nav, heading, text: message.into(), link: ("/", "Go to twostep") }
    }

    /// A message whose text names what the system knows (an organisation).
    pub fn owned(nav: Option<Nav>, heading: &'static str, message: String) -> Self {
        Self { nav, heading, text: message.into(), link: ("/", "Go to twostep") }
    }

    #[must_use]
    pub fn with_link(mut self, href: &'static str, label: &'static str) -> Self {
        self.link = (href, label);
        self
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

/// One entry of the readable security log (`audit::readable`).
pub struct LogRow {
    pub when: String,
    pub title: String,
    pub notes: Vec<String>,
    pub advice: Option<String>,
    pub attention: bool,
    pub ok: bool,
    pub ip: String,
    pub device: String,
    /// The title already says from where (a sign-in's does).
    pub place_in_title: bool,
}

/// One of the log's filters, as a link.
pub struct LogFilter {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "security_log.html")]
pub struct SecurityLog {
    pub nav: Option<Nav>,
    pub entries: Vec<LogRow>,
    pub filters: Vec<LogFilter>,
    /// The filter's name, when one is on.
    pub showing: Option<&'static str>,
    /// The next (older) page, and the newest page when this is not it.
    pub older: Option<String>,
    pub newest: Option<String>,
}

/// A companion device on the Security page.
pub struct PushRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_seen: String,
    pub web_push: bool,
}

/// The companion page: a shell its script fills in (`assets/companion.js`).
#[derive(Template)]
#[template(path = "companion.html")]
pub struct Companion {
    pub nav: Option<Nav>,
}

#[derive(Template)]
#[template(path = "push_new.html")]
pub struct PushPairing {
    pub nav: Option<Nav>,
    pub qr_svg: String,
    pub link: String,
    pub minutes: i64,
}

/// Adding a security key or passkey: its name first, then (with
/// `registration`) the browser's ceremony.
#[derive(Template)]
#[template(path = "key_new.html")]
pub struct KeyNew {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// `security_key` or `passkey`.
    pub kind: &'static str,
    pub name: String,
    pub error: Option<String>,
    pub registration: Option<KeyRegistration>,
}

pub struct KeyRegistration {
    pub id: String,
    /// `navigator.credentials.create()` options, as JSON.
    pub options: String,
}

/// Renaming an authenticator (a companion device, a security key).
#[derive(Template)]
#[template(path = "rename.html")]
pub struct Rename {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// "Rename companion device".
    pub heading: &'static str,
    pub action: String,
    /// Where "Cancel" goes: the Security page's section.
    pub back: &'static str,
    pub name: String,
    pub error: Option<String>,
}

/// Re-auth while a push waits for an answer on the device (the same
/// `#push-wait` script as the sign-in page drives it).
#[derive(Template)]
#[template(path = "reauth_push.html")]
pub struct ReauthPush {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub next: String,
    /// `next`, percent-encoded for a query string.
    pub next_encoded: String,
    pub need_password: bool,
    pub challenge_id: String,
    /// Two digits.
    pub number: String,
    pub sent_to: String,
    pub expires_in: i64,
}

/// The sign-in page while a push waits for an answer on the device.
#[derive(Template)]
#[template(path = "login_push.html")]
pub struct LoginPush {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub challenge_id: String,
    /// Two digits.
    pub number: String,
    /// The devices asked, by name; unknown after a form round trip.
    pub sent_to: Option<String>,
    pub expires_in: i64,
    /// `pending`, `denied`, `expired`, `used`: the script waits only on `pending`.
    pub state: &'static str,
    pub error: Option<String>,
    /// The first other method, for "Use another method".
    pub other: Option<String>,
}

/// One saved entry as the pages show it.
pub struct AllowRow {
    pub cidr: String,
    pub label: String,
    pub added: String,
}

impl From<&AllowEntry> for AllowRow {
    fn from(e: &AllowEntry) -> Self {
        Self { cidr: e.range.to_string(), label: e.label.clone(), added: human_time(e.created_at) }
    }
}

/// An organisation in a list.
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub require_two_factor: bool,
}
