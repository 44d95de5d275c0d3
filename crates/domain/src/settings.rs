//! The domain's tunables, parsed from configuration at start-up. Tests
//! shrink them (e.g. a cheap Argon2 cost) without touching the rules.

use crate::accounts::password::{HashCost, PasswordPolicy};

#[derive(Clone, Debug)]
#[expect(clippy::struct_excessive_bools, reason = "independent operator switches, not a state machine")]
pub struct Settings {
    pub password_policy: PasswordPolicy,
    pub hash_cost: HashCost,
    /// A session unused this long ends (ASVS L2: 30 minutes).
    pub session_idle_secs: i64,
    /// A session ends this long after sign-in, used or not (ASVS L2: 12 hours).
    pub session_absolute_secs: i64,
    /// The login token between the password and the second factor.
    pub login_token_secs: i64,
    /// Wrong codes that kill a login token.
    pub login_token_max_failures: i64,
    /// An unconfirmed authenticator enrolment.
    pub enrollment_secs: i64,
    /// How recent a proof must be for a sensitive change (§2.7).
    pub reauth_window_secs: i64,
    /// The issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// Where links in e-mails point (scheme, host, port; no trailing slash).
    pub public_url: String,
    /// How long a password-reset link works.
    pub reset_link_secs: i64,
    /// How long "Remember this browser" lasts.
    pub remember_browser_secs: i64,
    /// Password-reset mails per e-mail address per hour.
    pub reset_mails_per_hour: i64,
    /// Sign-up attempts (well-formed ones, taken addresses included) per
    /// source address (IPv6: its /64) per hour: `409 email_taken` must not
    /// check addresses in bulk.
    pub signups_per_source_per_hour: i64,
    /// Sign-up attempts per e-mail address per hour, from anywhere.
    pub signups_per_email_per_hour: i64,
    /// Argon2id computations at once (each takes 19 MiB and a core); more
    /// wait their turn instead of exhausting memory. Start-up sets the core count.
    pub max_concurrent_hashes: usize,
    /// How long a code sent by SMS, voice or e-mail works (§2.8: 10 minutes).
    pub oob_code_secs: i64,
    /// Wrong tries that void a sent code.
    pub oob_max_failures: i64,
    /// One send per this many seconds per login and per destination.
    pub resend_cooldown_secs: i64,
    /// Sends per hour per account and per destination.
    pub sends_per_hour: i64,
    /// Sends per day per destination.
    pub sends_per_day: i64,
    /// SMS and voice sends per hour to numbers of one calling code (§2.8
    /// pumping: a burst towards one country's premium ranges).
    pub phone_sends_per_hour_per_calling_code: i64,
    /// SMS and voice sends per hour in all (§2.8: the ceiling on a toll
    /// fraud bill).
    pub phone_sends_per_hour: i64,
    /// Whether a verified e-mail address may serve as the `email` fallback.
    pub email_fallback: bool,
    /// Whether a provider for SMS and voice is configured (or dev mode):
    /// without one, phone set-up is refused rather than silently failing.
    pub phone_enabled: bool,
    /// Regions phone numbers may be in (ISO 3166 alpha-2); `*` allows all.
    pub phone_countries: Vec<String>,
    /// How long an e-mail verification code (and link) works.
    pub email_verify_secs: i64,
    /// The operator's mandate: every account must have 2FA…
    pub require_two_factor: bool,
    /// …from this instant on (before it, users are told; `None`: at once).
    pub two_factor_enforce_from: Option<crate::time::Timestamp>,
    /// Whether a non-empty IP allow-list meets the operator's mandate in
    /// place of 2FA (seed 002: "either 2FA or Whitelist IP"). Organisation
    /// rules still need a real second factor.
    pub allowlist_satisfies_mandate: bool,
    /// How long a push sign-in request can be answered (§2.9: 60 s).
    pub push_secs: i64,
    /// How long a companion pairing code works (§2.9: ≤ 10 min).
    pub push_pairing_secs: i64,
    /// Accept Web Push endpoints over plain http (tests and local push
    /// services only; real push services are https).
    pub webpush_allow_http: bool,
    /// The WebAuthn relying-party id when it is a parent of the public
    /// URL's host (`example.com` for `https://login.example.com`).
    pub webauthn_rp_id: Option<String>,
    /// Whether a passkey alone (no password) may sign in. Off, passkeys
    /// still serve as a second factor; the sign-in page hides its button.
    pub webauthn_passkey_sign_in: bool,
    /// Whether backup-eligible (synced) credentials may be registered. An
    /// organisation may refuse them for its members even when this is on.
    pub webauthn_allow_synced: bool,
    /// When set, registration demands an attestation that chains to one of
    /// its CAs and names one of its AAGUIDs.
    pub webauthn_attestation: Option<crate::factors::webauthn::AttestationRule>,
    /// Whether an assertion whose sign count did not go up is refused, not
    /// just flagged (audited and mailed).
    pub webauthn_refuse_sign_count_regression: bool,
    /// Forward-auth rules and cookie domains (`[access]`).
    pub access: std::sync::Arc<crate::policy::access::Access>,
    /// OpenID Connect clients declared in the configuration file, brought
    /// in line at start-up.
    pub oidc_clients: Vec<crate::oidc::clients::DeclaredClient>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            password_policy: PasswordPolicy::default(),
            hash_cost: HashCost::default(),
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 60 * 60,
            login_token_secs: 5 * 60,
            login_token_max_failures: 5,
            enrollment_secs: 10 * 60,
            reauth_window_secs: 10 * 60,
            totp_issuer: "twostep".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            reset_link_secs: 30 * 60,
            remember_browser_secs: 30 * 24 * 60 * 60,
            reset_mails_per_hour: 5,
            signups_per_source_per_hour: 20,
            signups_per_email_per_hour: 5,
            max_concurrent_hashes: 2,
            oob_code_secs: 10 * 60,
            oob_max_failures: 5,
            resend_cooldown_secs: 30,
            sends_per_hour: 5,
            sends_per_day: 10,
            phone_sends_per_hour_per_calling_code: 200,
            phone_sends_per_hour: 500,
            email_fallback: true,
            phone_enabled: true,
            phone_countries: vec!["*".to_owned()],
            email_verify_secs: 24 * 60 * 60,
            require_two_factor: false,
            two_factor_enforce_from: None,
            allowlist_satisfies_mandate: false,
            push_secs: 60,
            push_pairing_secs: 10 * 60,
            webpush_allow_http: false,
            webauthn_rp_id: None,
            webauthn_passkey_sign_in: true,
            webauthn_allow_synced: true,
            webauthn_attestation: None,
            webauthn_refuse_sign_count_regression: false,
            access: std::sync::Arc::default(),
            oidc_clients: Vec::new(),
        }
    }
}
