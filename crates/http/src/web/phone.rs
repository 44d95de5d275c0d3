//! The phone as a second factor: adding or changing a number (a code sent
//! to it proves it), and removing it. Both need recent re-auth, asked for
//! before the form so nothing typed is lost.
//!
//! The code page is the answer to the form that sent the code, and carries
//! what was typed in hidden fields for its resend button: the domain keeps
//! the number only sealed, and a GET must never send anything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::factors::phone::PhoneInput;
use twostep_domain::notify::store::Channel;

use super::error::{self, Reply, SendForm, internal, reauth_first};
use super::pages::{Confirm, Country, PhoneSetup, PhoneVerify, SendButton};
use super::security::{confirm_page, show_codes};
use super::{CsrfForm, SignedForm, WebSession, after_rotation, codes, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

const HERE: &str = "/security/phone";

/// ISO 3166 region, name and calling code of the countries offered first.
/// Any other number works typed with its `+` prefix.
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("AR", "Argentina", "+54"),
    ("AU", "Australia", "+61"),
    ("AT", "Austria", "+43"),
    ("BE", "Belgium", "+32"),
    ("BR", "Brazil", "+55"),
    ("CA", "Canada", "+1"),
    ("CL", "Chile", "+56"),
    ("CN", "China", "+86"),
    ("CO", "Colombia", "+57"),
    ("CZ", "Czechia", "+420"),
    ("DK", "Denmark", "+45"),
    ("EG", "Egypt", "+20"),
    ("FI", "Finland", "+358"),
    ("FR", "France", "+33"),
    ("DE", "Germany", "+49"),
    ("GR", "Greece", "+30"),
    ("HK", "Hong Kong", "+852"),
    ("HU", "Hungary", "+36"),
    ("IN", "India", "+91"),
    ("ID", "Indonesia", "+62"),
    ("IE", "Ireland", "+353"),
    ("IL", "Israel", "+972"),
    ("IT", "Italy", "+39"),
    ("JP", "Japan", "+81"),
    ("KE", "Kenya", "+254"),
    ("LU", "Luxembourg", "+352"),
    ("MY", "Malaysia", "+60"),
    ("MX", "Mexico", "+52"),
    ("MA", "Morocco", "+212"),
    ("NL", "Netherlands", "+31"),
    ("NZ", "New Zealand", "+64"),
    ("NG", "Nigeria", "+234"),
    ("NO", "Norway", "+47"),
    ("PK", "Pakistan", "+92"),
    ("PE", "Peru", "+51"),
    ("PH", "Philippines", "+63"),
    ("PL", "Poland", "+48"),
    ("PT", "Portugal", "+351"),
    ("RO", "Romania", "+40"),
    ("SA", "Saudi Arabia", "+966"),
    ("SG", "Singapore", "+65"),
    ("ZA", "South Africa", "+27"),
    ("KR", "South Korea", "+82"),
    ("ES", "Spain", "+34"),
    ("SE", "Sweden", "+46"),
    ("CH", "Switzerland", "+41"),
    ("TW", "Taiwan", "+886"),
    ("TH", "Thailand", "+66"),
    ("TR", "Türkiye", "+90"),
    ("UA", "Ukraine", "+380"),
    ("AE", "United Arab Emirates", "+971"),
    ("GB", "United Kingdom", "+44"),
    ("US", "United States", "+1"),
    ("VN", "Vietnam", "+84"),
];

/// The countries the operator accepts numbers from (`phone_countries`),
/// with `chosen` (else the US, else the first) selected.
fn countries(allowed: &[String], chosen: &str) -> Vec<Country> {
    let all = allowed.iter().any(|c| c == "*");
    let mut list: Vec<Country> = COUNTRIES
        .iter()
        .filter(|(code, ..)| all || allowed.iter().any(|a| a == code))
        .map(|&(code, name, calling)| Country { code, name, calling, selected: false })
        .collect();
    if list.is_empty() {
        // Regions we have no name for: the number must then be typed with +.
        list =
            COUNTRIES.iter().map(|&(code, name, calling)| Country { code, name, calling, selected: false }).collect();
    }
    let pick = [chosen, "US"].into_iter().find_map(|c| list.iter().position(|x| x.code.eq_ignore_ascii_case(c)));
    if let Some(c) = list.get_mut(pick.unwrap_or(0)) {
        c.selected = true;
    }
    list
}

fn channel_of(s: &str) -> Channel {
    if s == "voice" { Channel::Voice } else { Channel::Sms }
}

fn resend_label(channel: Channel) -> &'static str {
    if channel == Channel::Voice { "Call me again" } else { "Send a new code" }
}

struct Typed<'a> {
    country: &'a str,
    number: &'a str,
    channel: Channel,
}

async fn setup_view(
    s: &AppState,
    session: &WebSession,
    status: StatusCode,
    typed: &Typed<'_>,
    error: Option<String>,
) -> Response {
    let changing = match s.twostep.phone_of(&session.me.account.id).await {
        Ok(p) => p.is_some(),
        Err(e) => return internal(&e),
    };
    render(
        status,
        &PhoneSetup {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            changing,
            countries: countries(&s.twostep.settings().phone_countries, typed.country),
            number: typed.number.chars().take(64).collect(),
            voice: typed.channel == Channel::Voice,
            error,
        },
    )
}

fn verify_view(
    session: &WebSession,
    status: StatusCode,
    typed: &Typed<'_>,
    send: SendButton,
    error: Option<String>,
) -> Response {
    render(
        status,
        &PhoneVerify {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            country: typed.country.chars().take(2).collect(),
            number: typed.number.chars().take(64).collect(),
            channel: typed.channel.as_str(),
            send,
            error,
        },
    )
}

pub async fn setup_page(State(s): State<AppState>, session: WebSession) -> Response {
    if !s.twostep.settings().phone_enabled {
        return error::phone_unavailable(session.nav());
    }
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {}
        Ok(_) => return reauth_first(HERE),
        Err(e) => return internal(&e),
    }
    let typed = Typed { country: "", number: "", channel: Channel::Sms };
    setup_view(&s, &session, StatusCode::OK, &typed, None).await
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    channel: String,
    /// Set by the code page's "Send a new code".
    resend: Option<String>,
    sent_to: Option<String>,
}

/// Sends a code to the number typed (or again, from the code page).
pub async fn send(State(s): State<AppState>, Ctx(ctx): Ctx, SignedForm(session, f): SignedForm<PhoneForm>) -> Response {
    let typed = Typed { country: &f.country, number: &f.number, channel: channel_of(&f.channel) };
    let input = PhoneInput::National { country: typed.country, number: typed.number };
    let cooldown = s.twostep.settings().resend_cooldown_secs;
    let resend_label = resend_label(typed.channel);
    match s.twostep.start_phone_verification(&session.me, input, typed.channel, &ctx).await {
        Ok(code) => {
            let send = SendButton { label: resend_label, sent_to: Some(code.sent_to), wait: cooldown };
            verify_view(&session, StatusCode::OK, &typed, send, None)
        }
        Err(e) => {
            let resend = f.resend.is_some();
            let nav = session.nav();
            match error::send(e, SendForm::Phone { here: HERE, nav: nav.as_ref() }, cooldown) {
                // Too soon from the code page: that page again, counting down.
                Reply::Inline(r) if resend && r.status == StatusCode::TOO_MANY_REQUESTS => {
                    let sent_to = codes::masked_or_none(f.sent_to.as_deref());
                    let send = SendButton { label: resend_label, sent_to, wait: r.wait };
                    verify_view(&session, r.status, &typed, send, Some(r.message))
                }
                Reply::Inline(r) => setup_view(&s, &session, r.status, &typed, Some(r.message)).await,
                Reply::Page(res) => res,
            }
        }
    }
}

/// The code page on its own (a reload, or a bookmark): the code sent last
/// still works, but there is nothing to resend to.
pub async fn verify_page(State(s): State<AppState>, session: WebSession) -> Response {
    if !s.twostep.settings().phone_enabled {
        return error::phone_unavailable(session.nav());
    }
    let typed = Typed { country: "", number: "", channel: Channel::Sms };
    let send = SendButton { label: "Send a new code", sent_to: None, wait: 0 };
    verify_view(&session, StatusCode::OK, &typed, send, None)
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    channel: String,
    sent_to: Option<String>,
}

pub async fn verify(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<VerifyForm>,
) -> Response {
    match s.twostep.confirm_phone(&session.me, &f.code, &ctx).await {
        Ok(done) => after_rotation(&s, session, done.session_token.as_ref(), |session| match &done.recovery_codes {
            Some(codes) => show_codes(
                session,
                codes,
                "Two-factor authentication is on",
                "Your phone number is verified. Save these recovery codes now: each one signs you in once if you lose your phone. Download, copy or print them.",
            ),
            None => see_other("/security?notice=phone_added"),
        }),
        Err(e) => error::phone_confirm(e, HERE).or_page(|r| {
            let typed = Typed { country: &f.country, number: &f.number, channel: channel_of(&f.channel) };
            let send = SendButton {
                label: resend_label(typed.channel),
                sent_to: codes::masked_or_none(f.sent_to.as_deref()),
                wait: 0,
            };
            verify_view(&session, r.status, &typed, send, Some(r.message))
        }),
    }
}

pub async fn remove_page(State(s): State<AppState>, session: WebSession) -> Response {
    if let Some(kept) = super::security::kept_by_policy(&s, &session, false).await {
        return kept;
    }
    confirm_page(
        &s,
        session,
        "/security/phone/remove",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Remove phone number".into(),
            text: "Codes will no longer be sent to this number. If it is your only second factor, two-factor authentication turns off.".into(),
            action: "/security/phone/remove".into(),
            button: "Remove phone number",
            danger: true,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.remove_phone(&session.me, &ctx).await {
        Ok(()) => see_other("/security?notice=phone_removed"),
        Err(e) => error::factor(&e, "/security/phone/remove"),
    }
}

super::csrf_field!(PhoneForm, VerifyForm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_long_enough_and_unique() {
        assert!(COUNTRIES.len() >= 30);
        let mut codes: Vec<_> = COUNTRIES.iter().map(|c| c.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), COUNTRIES.len());
        for (code, _, calling) in COUNTRIES {
            assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(calling.starts_with('+') && calling[1..].bytes().all(|b| b.is_ascii_digit()), "{calling}");
        }
    }

    #[test]
    fn the_us_is_chosen_unless_another_country_was() {
        let all = vec!["*".to_owned()];
        let chosen = |list: &[Country]| list.iter().filter(|c| c.selected).map(|c| c.code).collect::<Vec<_>>();
        assert_eq!(chosen(&countries(&all, "")), ["US"]);
        assert_eq!(chosen(&countries(&all, "gb")), ["GB"]);
        assert_eq!(chosen(&countries(&all, "XX")), ["US"]);
    }

    #[test]
    fn only_allowed_countries_are_offered() {
        let list = countries(&["FR".to_owned(), "DE".to_owned()], "");
        let codes: Vec<_> = list.iter().map(|c| c.code).collect();
        assert_eq!(codes, ["FR", "DE"]);
        assert!(list[0].selected, "the first one when the US is not allowed");
    }
}
