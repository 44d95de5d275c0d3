//! Configuration: defaults, then `twostep.toml` (or `--config`), then
//! `TWOSTEP_*` environment variables (`__` separates sections, e.g.
//! `TWOSTEP_SESSION__IDLE_TIMEOUT_SECS`), then command-line flags. Parsed
//! and checked once at start-up, so a typo or a bad value stops the server
//! with a message naming the key.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use twostep_domain::accounts::password::{MIN_LENGTH_FLOOR, PasswordPolicy};
use twostep_domain::crypto::MasterKey;
use twostep_domain::ports::OsRng;
use twostep_domain::settings::Settings;

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "sqlite_synchronous",
    "data_dir",
    "public_url",
    "secret_key",
    "retiring_secret_keys",
    "log_format",
    "dev_mode",
    "dev_mode_public",
    "smtp_url",
    "smtp_from",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from",
    "twilio_base_url",
    "sms_webhook_url",
    "sms_webhook_secret",
    "phone_countries",
    "phone_sends_per_hour",
    "phone_sends_per_hour_per_calling_code",
    "email_fallback",
    "delivery_poll_ms",
    "trusted_proxies",
    "password",
    "session",
    "totp",
    "policy",
    "push",
    "signup",
    "webauthn",
    "shutdown",
    "metrics_listen",
];

/// Settings read verbatim from `TWOSTEP_*` variables (see `Config::load`).
const RAW_STRING_KEYS: &[&str] = &[
    "smtp_from",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from",
    "sms_webhook_secret",
    "phone_countries",
    "trusted_proxies",
    "retiring_secret_keys",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub database_url: Option<String>,
    /// SQLite's durability: `normal` (default) or `full` (fsync every commit).
    pub sqlite_synchronous: twostep_store::Synchronous,
    pub data_dir: PathBuf,
    pub public_url: Option<String>,
    pub secret_key: Option<String>,
    /// With `secret_key`: earlier keys, read only, while `twostep key
    /// rotate` re-seals what they sealed (a key file lists them after the
    /// current key instead).
    pub retiring_secret_keys: Option<ListSetting>,
    pub log_format: LogFormat,
    pub dev_mode: bool,
    /// Allows `dev_mode` on an address beyond loopback. Dev mode serves
    /// every message, codes and reset links included, at `/dev/outbox` to
    /// anyone who can reach the server, so it is refused there unless this
    /// is set too.
    pub dev_mode_public: bool,
    /// `smtp://host:port`, `smtps://…`, with `user:pass@` when needed.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// Twilio for SMS and voice: all of sid, token and from, or none.
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub twilio_from: Option<String>,
    pub twilio_base_url: Option<String>,
    /// Any other SMS/voice gateway: signed JSON POSTs to this URL.
    pub sms_webhook_url: Option<String>,
    /// The webhook's HMAC-SHA256 key (at least 32 characters).
    pub sms_webhook_secret: Option<String>,
    /// Comma-separated ISO 3166 regions phone numbers may be in, or `*`.
    /// Default: the Twilio sender number's country, else `*`.
    pub phone_countries: Option<String>,
    /// SMS and voice sends an hour in all (§2.8: the ceiling on a toll
    /// fraud bill).
    pub phone_sends_per_hour: i64,
    /// SMS and voice sends an hour to numbers of one calling code.
    pub phone_sends_per_hour_per_calling_code: i64,
    /// Whether a verified e-mail address may serve as a sign-in fallback.
    pub email_fallback: bool,
    /// How often the delivery worker looks for retries and leftovers.
    pub delivery_poll_ms: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or
    /// CIDR ranges, as `"10.0.0.1, 10.0.0.0/8"` or a list. Unset: none, and
    /// the client address is always the socket's (SEC-60).
    pub trusted_proxies: Option<ListSetting>,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub totp: TotpConfig,
    pub policy: PolicyConfig,
    pub push: PushConfig,
    pub signup: SignupConfig,
    pub webauthn: WebauthnConfig,
    /// Forward-auth: rules and cookie domains (`crate::access_config`).
    pub access: twostep_domain::policy::access::AccessSpec,
    /// OpenID Connect clients declared here (`crate::oidc_config`).
    pub oidc: crate::oidc_config::OidcConfig,
    /// Graceful stop on SIGTERM/SIGINT (see `crate::shutdown`).
    pub shutdown: ShutdownConfig,
    /// Where Prometheus scrapes `/metrics`, e.g. `127.0.0.1:9090`; unset:
    /// no metrics listener. Kept apart from `listen` so the public port
    /// never serves it.
    pub metrics_listen: Option<String>,
}

/// How the server stops on SIGTERM or SIGINT.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Everything (requests, long-polls, the outbox pass, the pool) must be
    /// done within this; past it the process exits non-zero anyway.
    pub timeout_secs: u64,
    /// How long `/readyz` answers 503 while the listener still serves,
    /// so a load balancer stops sending traffic before it closes.
    pub drain_delay_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { timeout_secs: 30, drain_delay_ms: 0 }
    }
}

/// Sign-up caps (SEC-36): well-formed attempts, taken addresses included,
/// per hour, so `email_taken` cannot test addresses in bulk.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupConfig {
    /// From one source address (IPv6: its /64).
    pub per_source_per_hour: i64,
    /// For one e-mail address, from anywhere.
    pub per_email_per_hour: i64,
}

impl Default for SignupConfig {
    fn default() -> Self {
        let s = Settings::default();
        Self { per_source_per_hour: s.signups_per_source_per_hour, per_email_per_hour: s.signups_per_email_per_hour }
    }
}

/// Push approval (story L2): how companion devices are woken.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Wake installed companion pages through their browser's push service
    /// (Web Push with VAPID; the key is derived from the master key).
    pub web_push: bool,
    /// The VAPID contact (`mailto:…` or `https://…`). Default: the public
    /// URL when it is https, else a placeholder push services accept.
    pub web_push_subject: Option<String>,
    /// Also POST `{"challenge","device"}`, signed like the SMS webhook, to
    /// this URL for every push (an ntfy topic, your own relay).
    pub webhook_url: Option<String>,
    /// The push webhook's HMAC-SHA256 key (at least 32 characters).
    pub webhook_secret: Option<String>,
    /// Accept Web Push endpoints over plain http (a local push service in
    /// tests; never in production).
    pub allow_http_endpoints: bool,
    /// Let Web Push endpoints be on loopback or private addresses (a local
    /// push service in tests; never where users are not all trusted: they
    /// could aim the server's requests into its own network).
    pub allow_private_endpoints: bool,
    /// A header your proxy sets to the client's approximate place
    /// (`CF-IPCountry`, a GeoIP city): devices show it with each request.
    /// Believed only from `trusted_proxies`.
    pub place_header: Option<String>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            web_push: true,
            web_push_subject: None,
            webhook_url: None,
            webhook_secret: None,
            allow_http_endpoints: false,
            allow_private_endpoints: false,
            place_header: None,
        }
    }
}

/// How push challenges reach devices beyond their long-poll.
#[derive(Clone, Debug)]
pub struct PushWaking {
    /// The VAPID subject, when Web Push is on.
    pub web_push_subject: Option<String>,
    pub webhook: Option<(String, String)>,
    pub place_header: Option<String>,
    /// `push.allow_private_endpoints`.
    pub allow_private_endpoints: bool,
}

/// The operator's 2FA mandate (story P2).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Every account must have 2FA…
    pub require_two_factor: bool,
    /// …from this date (`2027-01-31` or RFC 3339); before it, users are told.
    pub enforce_from: Option<String>,
    /// A non-empty IP allow-list meets the mandate in place of 2FA (seed
    /// 002: "either 2FA or Whitelist IP"); organisation rules still need 2FA.
    pub allowlist_satisfies: bool,
}

/// A list setting, written `"a, b"` (as environment variables must) or `["a", "b"]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListSetting {
    Text(String),
    List(Vec<String>),
}

impl ListSetting {
    fn joined(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::List(items) => items.join(","),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
    /// How recent a proof must be before a sensitive change (SEC-55).
    pub reauth_window_secs: i64,
}

impl SessionConfig {
    /// The idle, absolute and re-auth windows, each within its bounds.
    fn checked(&self) -> Result<(i64, i64, i64), ConfigError> {
        let (idle, absolute, reauth) = (self.idle_timeout_secs, self.absolute_timeout_secs, self.reauth_window_secs);
        if idle < 60 {
            return Err(bad("session.idle_timeout_secs", "must be at least 60"));
        }
        if absolute < idle {
            return Err(bad("session.absolute_timeout_secs", "must be at least session.idle_timeout_secs"));
        }
        if !(1..=86_400).contains(&reauth) {
            return Err(bad("session.reauth_window_secs", "must be between 1 and 86400 seconds"));
        }
        Ok((idle, absolute, reauth))
    }
}

/// Security keys and passkeys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The relying-party id when it is a parent domain of `public_url`'s
    /// host (`example.com` for `https://login.example.com`), so keys also
    /// work on its other subdomains' sign-in pages. Default: the host.
    pub rp_id: Option<String>,
    /// Whether a passkey alone (no password) signs in. Off, passkeys are
    /// still accepted as a second factor.
    pub passkey_sign_in: bool,
    /// Whether synced (backup-eligible) passkeys may be registered.
    pub allow_synced: bool,
    /// Only keys attested as one of these models (AAGUIDs) may be
    /// registered; needs `attestation_ca_files`. Empty: any key.
    pub aaguids: Option<ListSetting>,
    /// PEM files of the makers' attestation root CAs that vouch for
    /// `aaguids`.
    pub attestation_ca_files: Option<ListSetting>,
    /// Refuse, not just flag, an assertion whose sign count went backwards.
    pub refuse_sign_count_regression: bool,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        let s = Settings::default();
        Self {
            rp_id: None,
            passkey_sign_in: s.webauthn_passkey_sign_in,
            allow_synced: s.webauthn_allow_synced,
            aaguids: None,
            attestation_ca_files: None,
            refuse_sign_count_regression: s.webauthn_refuse_sign_count_regression,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    /// Shown in authenticator apps; defaults to the public URL's host.
    pub issuer: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            sqlite_synchronous: twostep_store::Synchronous::Normal,
            data_dir: PathBuf::from("data"),
            public_url: None,
            secret_key: None,
            retiring_secret_keys: None,
            log_format: LogFormat::Human,
            dev_mode: false,
            dev_mode_public: false,
            smtp_url: None,
            smtp_from: "twostep <noreply@localhost>".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
            twilio_base_url: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            phone_countries: None,
            phone_sends_per_hour: Settings::default().phone_sends_per_hour,
            phone_sends_per_hour_per_calling_code: Settings::default().phone_sends_per_hour_per_calling_code,
            email_fallback: true,
            delivery_poll_ms: 1000,
            trusted_proxies: None,
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            totp: TotpConfig::default(),
            policy: PolicyConfig::default(),
            push: PushConfig::default(),
            signup: SignupConfig::default(),
            webauthn: WebauthnConfig::default(),
            access: twostep_domain::policy::access::AccessSpec::default(),
            oidc: crate::oidc_config::OidcConfig::default(),
            shutdown: ShutdownConfig::default(),
            metrics_listen: None,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { min_length: PasswordPolicy::default().min_length }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        let s = Settings::default();
        Self {
            idle_timeout_secs: s.session_idle_secs,
            absolute_timeout_secs: s.session_absolute_secs,
            reauth_window_secs: s.reauth_window_secs,
        }
    }
}

/// A bad setting, named.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_owned(), message: message.into() }
}

/// Flags that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the layers. `file` is `--config`; without it `twostep.toml` is
    /// read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.exists() => {
                return Err(bad("--config", format!("{} does not exist", f.display())));
            }
            Some(f) => fig = fig.merge(Toml::file(f)),
            None => fig = fig.merge(Toml::file("twostep.toml")),
        }
        // Only our keys: TWOSTEP_CONFIG and test variables are not settings.
        let env = Env::prefixed("TWOSTEP_").split("__").filter(|k| {
            let first = k.as_str().split('.').next().unwrap_or_default().to_ascii_lowercase();
            TOP_LEVEL_KEYS.contains(&first.as_str())
        });
        fig = fig.merge(env);
        // Figment reads `+14155550100` from the environment as a number and
        // drops the plus; these keys are text whatever they look like.
        for key in RAW_STRING_KEYS {
            if let Ok(v) = std::env::var(format!("TWOSTEP_{}", key.to_ascii_uppercase())) {
                fig = fig.merge(Serialized::default(key, v));
            }
        }
        if let Some(v) = &overrides.listen {
            fig = fig.merge(Serialized::default("listen", v));
        }
        if let Some(v) = &overrides.database_url {
            fig = fig.merge(Serialized::default("database_url", v));
        }
        if let Some(v) = &overrides.data_dir {
            fig = fig.merge(Serialized::default("data_dir", v));
        }
        if let Some(v) = &overrides.log_format {
            fig = fig.merge(Serialized::default("log_format", v));
        }
        fig.extract().map_err(|e| {
            let key = e.path.join(".");
            let key = if key.is_empty() { "(file)".to_owned() } else { key };
            bad(&key, e.kind.to_string())
        })
    }

    /// The graceful-stop bounds, checked.
    pub fn shutdown_options(&self) -> Result<crate::shutdown::Options, ConfigError> {
        let s = &self.shutdown;
        if !(1..=3600).contains(&s.timeout_secs) {
            return Err(bad("shutdown.timeout_secs", "must be between 1 and 3600"));
        }
        if s.drain_delay_ms >= s.timeout_secs.saturating_mul(1000) {
            return Err(bad("shutdown.drain_delay_ms", "must be shorter than shutdown.timeout_secs"));
        }
        Ok(crate::shutdown::Options {
            deadline: std::time::Duration::from_secs(s.timeout_secs),
            drain_delay: std::time::Duration::from_millis(s.drain_delay_ms),
        })
    }

    /// `metrics_listen`, parsed; `None` when unset.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_listen
            .as_deref()
            .map(|a| {
                a.parse().map_err(|_| bad("metrics_listen", format!("{a:?} is not an address like 127.0.0.1:9090")))
            })
            .transpose()
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("twostep.db").display()))
    }

    /// Checks every value and reads or creates the master key (`serve`,
    /// `migrate`: the commands that may start a new installation).
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with(KeyMode::Create)
    }

    /// Checks every value; `keys` says what a missing key file means.
    pub fn resolve_with(&self, keys: KeyMode) -> Result<Resolved, ConfigError> {
        // Checked here too, so `config check` names a bad value before a start.
        self.shutdown_options()?;
        self.metrics_addr()?;
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| bad("listen", format!("{:?} is not an address like 127.0.0.1:8080", self.listen)))?;
        if self.dev_mode && !listen.ip().is_loopback() && !self.dev_mode_public {
            return Err(bad(
                "dev_mode",
                format!(
                    "dev mode shows every message (codes, reset links) at /dev/outbox to anyone who can reach {listen}; \
                     listen on 127.0.0.1 or ::1, or set dev_mode_public = true if that is really meant"
                ),
            ));
        }
        let database_url = self.database_url();
        if twostep_store::Backend::from_url(&database_url).is_none() {
            return Err(bad("database_url", "must start with sqlite:// or postgres://"));
        }
        let public_url = match &self.public_url {
            Some(u) => Some(parse_public_url(u)?),
            None if listen.ip().is_loopback() => None,
            None => {
                return Err(bad("public_url", "set it (https://…) when listening beyond loopback"));
            }
        };
        let min = self.password.min_length;
        if !(MIN_LENGTH_FLOOR..=64).contains(&min) {
            return Err(bad("password.min_length", format!("must be between {MIN_LENGTH_FLOOR} and 64")));
        }
        let (idle, absolute, reauth) = self.session.checked()?;
        let phone_provider = self.phone_provider()?;
        let (mut keys, key_source) = self.master_keys(keys)?;
        let master_key = keys.remove(0);
        let retiring_keys = keys;
        if !(50..=60_000).contains(&self.delivery_poll_ms) {
            return Err(bad("delivery_poll_ms", "must be between 50 and 60000"));
        }
        for (key, value) in [
            ("phone_sends_per_hour", self.phone_sends_per_hour),
            ("phone_sends_per_hour_per_calling_code", self.phone_sends_per_hour_per_calling_code),
            ("signup.per_source_per_hour", self.signup.per_source_per_hour),
            ("signup.per_email_per_hour", self.signup.per_email_per_hour),
        ] {
            if !(1..=1_000_000).contains(&value) {
                return Err(bad(key, "must be between 1 and 1000000"));
            }
        }
        let enforce_from = self.policy.enforce_from.as_deref().map(parse_instant).transpose()?;
        let trusted_proxies = match &self.trusted_proxies {
            Some(list) => twostep_domain::policy::allowlist::parse_ranges(&list.joined())
                .map_err(|e| bad("trusted_proxies", format!("{e}; give addresses or CIDR ranges, comma-separated")))?,
            None => Vec::new(),
        };
        let mut settings = Settings {
            require_two_factor: self.policy.require_two_factor,
            two_factor_enforce_from: enforce_from,
            allowlist_satisfies_mandate: self.policy.allowlist_satisfies,
            email_fallback: self.email_fallback,
            phone_enabled: !matches!(phone_provider, PhoneProvider::None) || self.dev_mode,
            phone_countries: self.phone_countries(&phone_provider)?,
            phone_sends_per_hour: self.phone_sends_per_hour,
            phone_sends_per_hour_per_calling_code: self.phone_sends_per_hour_per_calling_code,
            ..Settings::default()
        };
        settings.webpush_allow_http = self.push.allow_http_endpoints;
        settings.webauthn_rp_id = self.webauthn_rp_id(public_url.as_ref())?;
        settings.webauthn_passkey_sign_in = self.webauthn.passkey_sign_in;
        settings.webauthn_allow_synced = self.webauthn.allow_synced;
        settings.webauthn_attestation = self.webauthn_attestation()?;
        settings.webauthn_refuse_sign_count_regression = self.webauthn.refuse_sign_count_regression;
        let push = self.push_waking(public_url.as_ref())?;
        settings.password_policy.min_length = min;
        settings.session_idle_secs = idle;
        settings.session_absolute_secs = absolute;
        settings.reauth_window_secs = reauth;
        settings.signups_per_source_per_hour = self.signup.per_source_per_hour;
        settings.signups_per_email_per_hour = self.signup.per_email_per_hour;
        settings.access = std::sync::Arc::new(crate::access_config::resolve(&self.access, public_url.as_ref())?);
        settings.oidc_clients = crate::oidc_config::resolve(&self.oidc)?;
        Ok(Resolved {
            listen,
            database_url,
            sqlite_synchronous: self.sqlite_synchronous,
            public_url,
            master_key,
            retiring_keys,
            key_source,
            dev_mode: self.dev_mode,
            smtp_url: self.smtp_url.clone(),
            smtp_from: self.smtp_from.clone(),
            phone_provider,
            delivery_poll: std::time::Duration::from_millis(self.delivery_poll_ms),
            issuer: self.totp.issuer.clone(),
            trusted_proxies,
            push,
            settings,
        })
    }

    /// The relying-party id, checked against the public URL when both are set.
    fn webauthn_rp_id(&self, public_url: Option<&url::Url>) -> Result<Option<String>, ConfigError> {
        if let (Some(url), Some(rp_id)) = (public_url, &self.webauthn.rp_id) {
            twostep_domain::factors::webauthn::relying_party_for(url.as_str(), Some(rp_id))
                .map_err(|e| bad("webauthn.rp_id", format!("{e}; give public_url's host or a parent domain of it")))?;
        }
        Ok(self.webauthn.rp_id.clone())
    }

    /// The attestation rule: AAGUIDs and the CAs that vouch for them, both
    /// or neither.
    fn webauthn_attestation(&self) -> Result<Option<twostep_domain::factors::webauthn::AttestationRule>, ConfigError> {
        use twostep_domain::factors::webauthn::{AttestationRule, AttestationRuleError};
        const AAGUIDS: &str = "webauthn.aaguids";
        const CAS: &str = "webauthn.attestation_ca_files";
        let items = |l: &Option<ListSetting>| -> Vec<String> {
            l.as_ref()
                .map(ListSetting::joined)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let (aaguids, files) = (items(&self.webauthn.aaguids), items(&self.webauthn.attestation_ca_files));
        match (aaguids.is_empty(), files.is_empty()) {
            (true, true) => return Ok(None),
            (false, true) => {
                return Err(bad(
                    CAS,
                    "webauthn.aaguids needs the makers' attestation CA certificates (PEM files) that vouch for \
                     them: an AAGUID alone is the key's own, unverifiable claim",
                ));
            }
            (true, false) => {
                return Err(bad(AAGUIDS, "list the AAGUIDs of the key models to accept from these CAs"));
            }
            (false, false) => {}
        }
        let cas = files
            .iter()
            .map(|f| fs::read_to_string(f).map(|pem| (f.clone(), pem)).map_err(|e| bad(CAS, format!("{f}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        AttestationRule::new(&aaguids, &cas).map(Some).map_err(|e| match e {
            AttestationRuleError::BadAaguid(_) | AttestationRuleError::NoAaguids => bad(AAGUIDS, e.to_string()),
            AttestationRuleError::BadCa { .. } | AttestationRuleError::NoCas => bad(CAS, e.to_string()),
        })
    }

    fn push_waking(&self, public_url: Option<&url::Url>) -> Result<PushWaking, ConfigError> {
        let p = &self.push;
        let subject = match &p.web_push_subject {
            Some(s) if s.starts_with("mailto:") || s.starts_with("https://") => Some(s.clone()),
            Some(_) => return Err(bad("push.web_push_subject", "a mailto: address or an https:// URL")),
            None => Some(match public_url {
                Some(u) if u.scheme() == "https" => u.origin().ascii_serialization(),
                _ => "mailto:webpush@twostep.invalid".to_owned(),
            }),
        };
        let webhook = match &p.webhook_url {
            Some(url) => {
                url::Url::parse(url).map_err(|e| bad("push.webhook_url", e.to_string()))?;
                let secret = p.webhook_secret.clone().unwrap_or_default();
                if secret.len() < 32 {
                    return Err(bad(
                        "push.webhook_secret",
                        "set a secret of at least 32 characters to sign push webhooks",
                    ));
                }
                Some((url.clone(), secret))
            }
            None => None,
        };
        let place_header = match &p.place_header {
            Some(h) if axum::http::HeaderName::from_bytes(h.as_bytes()).is_ok() => Some(h.to_ascii_lowercase()),
            Some(_) => return Err(bad("push.place_header", "not a valid header name")),
            None => None,
        };
        Ok(PushWaking {
            web_push_subject: subject.filter(|_| p.web_push),
            webhook,
            place_header,
            allow_private_endpoints: p.allow_private_endpoints,
        })
    }

    fn phone_provider(&self) -> Result<PhoneProvider, ConfigError> {
        let twilio = [&self.twilio_account_sid, &self.twilio_auth_token, &self.twilio_from];
        let set = twilio.iter().filter(|v| v.is_some()).count();
        if set > 0 && set < 3 {
            return Err(bad(
                "twilio_account_sid",
                "set twilio_account_sid, twilio_auth_token and twilio_from together",
            ));
        }
        if set == 3 && self.sms_webhook_url.is_some() {
            return Err(bad("sms_webhook_url", "configure Twilio or a webhook for SMS, not both"));
        }
        if set == 3 {
            let base = self.twilio_base_url.clone().unwrap_or_else(|| "https://api.twilio.com".to_owned());
            url::Url::parse(&base).map_err(|e| bad("twilio_base_url", e.to_string()))?;
            return Ok(PhoneProvider::Twilio {
                account_sid: self.twilio_account_sid.clone().unwrap_or_default(),
                auth_token: self.twilio_auth_token.clone().unwrap_or_default(),
                from: self.twilio_from.clone().unwrap_or_default(),
                base_url: base,
            });
        }
        if let Some(url) = &self.sms_webhook_url {
            url::Url::parse(url).map_err(|e| bad("sms_webhook_url", e.to_string()))?;
            let secret = self.sms_webhook_secret.clone().unwrap_or_default();
            if secret.len() < 32 {
                return Err(bad("sms_webhook_secret", "set a secret of at least 32 characters to sign webhook calls"));
            }
            return Ok(PhoneProvider::Webhook { url: url.clone(), secret });
        }
        Ok(PhoneProvider::None)
    }

    /// §2.8: pumping defence. Unset, numbers must share the sender number's
    /// country; `*` has to be written out.
    fn phone_countries(&self, provider: &PhoneProvider) -> Result<Vec<String>, ConfigError> {
        if let Some(list) = &self.phone_countries {
            let regions: Vec<String> =
                list.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
            if regions.is_empty()
                || regions.iter().any(|r| r != "*" && (r.len() != 2 || !r.bytes().all(|b| b.is_ascii_uppercase())))
            {
                return Err(bad("phone_countries", "a comma-separated list of ISO 3166 regions like US,GB, or *"));
            }
            return Ok(regions);
        }
        if let PhoneProvider::Twilio { from, .. } = provider
            && let Some(region) = twostep_domain::factors::phone::number::Phone::parse_e164(from)
                .ok()
                .and_then(|p| p.region().map(str::to_owned))
        {
            return Ok(vec![region]);
        }
        Ok(vec!["*".to_owned()])
    }

    /// The master keys, current first (`crate::keyfile`).
    fn master_keys(&self, mode: KeyMode) -> Result<(Vec<MasterKey>, KeySource), ConfigError> {
        if let Some(k) = &self.secret_key {
            let key = MasterKey::from_hex(k).ok_or_else(|| bad("secret_key", "must be 64 hex digits (32 bytes)"))?;
            let mut keys = vec![key];
            let retiring = self.retiring_secret_keys.as_ref().map(ListSetting::joined).unwrap_or_default();
            for hex in retiring.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                keys.push(
                    MasterKey::from_hex(hex)
                        .ok_or_else(|| bad("retiring_secret_keys", "each must be 64 hex digits (32 bytes)"))?,
                );
            }
            return Ok((keys, KeySource::Config));
        }
        if self.retiring_secret_keys.is_some() {
            return Err(bad("retiring_secret_keys", "goes with secret_key; a key file lists retiring keys itself"));
        }
        let path = self.key_file();
        if path.exists() {
            let keys = crate::keyfile::read(&path).map_err(|e| bad("secret_key", e))?;
            return Ok((keys, KeySource::File(path)));
        }
        match mode {
            KeyMode::Create => {}
            KeyMode::MustExist => {
                return Err(bad(
                    "secret_key",
                    format!("no master key at {}; run from the server's folder or pass --data-dir", path.display()),
                ));
            }
            // Never written: only for showing a configuration.
            KeyMode::Peek => return Ok((vec![MasterKey::generate(&OsRng)], KeySource::NotYet(path))),
        }
        twostep_store::private_dir(&self.data_dir)
            .map_err(|e| bad("data_dir", format!("{}: {e}", self.data_dir.display())))?;
        let key = MasterKey::generate(&OsRng);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| bad("secret_key", format!("cannot create {}: {e}", path.display())))?;
        writeln!(f, "{}", key.to_hex()).map_err(|e| bad("secret_key", format!("{}: {e}", path.display())))?;
        Ok((vec![key], KeySource::Generated(path)))
    }

    /// Reads the master key, or makes the key file of a new installation
    /// (`migrate` before anything else runs).
    pub fn ensure_master_key(&self) -> Result<KeySource, ConfigError> {
        Ok(self.master_keys(KeyMode::Create)?.1)
    }

    /// Where the master key file is (when `secret_key` is not set).
    pub fn key_file(&self) -> PathBuf {
        self.data_dir.join("twostep.key")
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn masked_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret_key.is_some() {
            shown.secret_key = Some("********".into());
        }
        if shown.retiring_secret_keys.is_some() {
            shown.retiring_secret_keys = Some(ListSetting::Text("********".into()));
        }
        shown.database_url = Some(mask_url_password(&self.database_url()));
        shown.smtp_url = self.smtp_url.as_deref().map(mask_url_password);
        if shown.twilio_auth_token.is_some() {
            shown.twilio_auth_token = Some("********".into());
        }
        if shown.sms_webhook_secret.is_some() {
            shown.sms_webhook_secret = Some("********".into());
        }
        if shown.push.webhook_secret.is_some() {
            shown.push.webhook_secret = Some("********".into());
        }
        toml_string(&shown)
    }
}

fn toml_string(c: &Config) -> String {
    toml::to_string_pretty(c).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
}

pub(crate) fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `2027-01-31` (midnight UTC) or an RFC 3339 instant.
fn parse_instant(s: &str) -> Result<twostep_domain::time::Timestamp, ConfigError> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let at = time::OffsetDateTime::parse(s, &Rfc3339).map(time::OffsetDateTime::unix_timestamp).or_else(|_| {
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc().unix_timestamp())
    });
    at.map(twostep_domain::time::Timestamp::from_secs)
        .map_err(|_| bad("policy.enforce_from", format!("{s:?} is not a date like 2027-01-31 or an RFC 3339 time")))
}

fn parse_public_url(s: &str) -> Result<url::Url, ConfigError> {
    let u = url::Url::parse(s).map_err(|e| bad("public_url", format!("{s:?}: {e}")))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback_host(&u) => Ok(u),
        "http" => Err(bad("public_url", "plain http is allowed only on a loopback address; use https")),
        other => Err(bad("public_url", format!("scheme {other:?} is not http or https"))),
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        // RFC 6761: *.localhost names are loopback too (Chromium resolves
        // them so; the forward-auth browser test runs its portal on one).
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Debug)]
pub enum KeySource {
    Config,
    File(PathBuf),
    Generated(PathBuf),
    /// No key file yet (`KeyMode::Peek`): the first `serve` makes it.
    NotYet(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config => f.write_str("secret_key in the configuration"),
            Self::File(p) => write!(f, "key file {}", p.display()),
            Self::Generated(p) => write!(f, "key file {} (just made)", p.display()),
            Self::NotYet(p) => write!(f, "none yet: the first start makes {}", p.display()),
        }
    }
}

/// What resolving does when there is no key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// Make one (a new installation).
    Create,
    /// Refuse: a command that works on existing data must not start a new
    /// installation beside it.
    MustExist,
    /// Show the configuration without writing anything.
    Peek,
}

/// A checked configuration, ready to start from.
#[derive(Debug)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub database_url: String,
    /// SQLite's `synchronous` (ignored on PostgreSQL).
    pub sqlite_synchronous: twostep_store::Synchronous,
    pub public_url: Option<url::Url>,
    /// The current master key: it seals and hashes everything new.
    pub master_key: MasterKey,
    /// Earlier keys still read while a rotation re-seals (`twostep key`).
    pub retiring_keys: Vec<MasterKey>,
    pub key_source: KeySource,
    pub dev_mode: bool,
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    pub phone_provider: PhoneProvider,
    pub delivery_poll: std::time::Duration,
    pub issuer: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed (SEC-60).
    pub trusted_proxies: Vec<twostep_domain::policy::allowlist::IpRange>,
    pub push: PushWaking,
    pub settings: Settings,
}

/// Where SMS and voice codes go.
#[derive(Clone)]
pub enum PhoneProvider {
    Twilio {
        account_sid: String,
        auth_token: String,
        from: String,
        base_url: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    /// The dev outbox in dev mode; phone methods are off otherwise.
    None,
}

impl std::fmt::Debug for PhoneProvider {
    // Tokens and secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Twilio { account_sid, base_url, .. } => write!(f, "Twilio({account_sid} at {base_url})"),
            Self::Webhook { url, .. } => write!(f, "Webhook({url})"),
            Self::None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_off_loopback() {
        assert!(parse_public_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_public_url("http://localhost:8080").is_ok());
        assert!(parse_public_url("http://auth.fa.localhost:8080").is_ok());
        assert!(parse_public_url("http://localhost.example.com").is_err());
        assert!(parse_public_url("https://id.example.com").is_ok());
        let e = parse_public_url("http://id.example.com").expect_err("refused");
        assert_eq!(e.key, "public_url");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config { listen: "nonsense".into(), ..Config::default() };
        assert_eq!(c.resolve().expect_err("bad").key, "listen");
        c.listen = "127.0.0.1:0".into();
        c.password.min_length = 7;
        assert_eq!(c.resolve().expect_err("bad").key, "password.min_length");
    }

    #[test]
    fn webauthn_rp_id_is_the_public_hosts_own_or_a_parent() {
        let mut c = Config {
            listen: "127.0.0.1:0".into(),
            secret_key: Some("ab".repeat(32)),
            public_url: Some("https://login.example.com".into()),
            ..Config::default()
        };
        c.webauthn.rp_id = Some("example.com".into());
        assert_eq!(c.resolve().expect("ok").settings.webauthn_rp_id.as_deref(), Some("example.com"));
        c.webauthn.rp_id = Some("example.org".into());
        assert_eq!(c.resolve().expect_err("bad").key, "webauthn.rp_id");
    }

    fn webauthn_config() -> Config {
        Config { listen: "127.0.0.1:0".into(), secret_key: Some("ab".repeat(32)), ..Config::default() }
    }

    fn soft_token_ca(dir: &Path) -> String {
        use crypto_glue::traits::{EncodePem, LineEndingPem};
        let (_, ca) = webauthn_authenticator_rs::softtoken::SoftToken::new(false).expect("token");
        let path = dir.join("ca.pem");
        fs::write(&path, ca.to_pem(LineEndingPem::LF).expect("pem")).expect("write");
        path.display().to_string()
    }

    #[test]
    fn webauthn_switches_default_to_open_and_reach_the_settings() {
        let c = webauthn_config();
        let s = c.resolve().expect("ok").settings;
        assert!(s.webauthn_passkey_sign_in && s.webauthn_allow_synced);
        assert!(!s.webauthn_refuse_sign_count_regression);
        assert!(s.webauthn_attestation.is_none());
        let mut c = webauthn_config();
        c.webauthn.passkey_sign_in = false;
        c.webauthn.allow_synced = false;
        c.webauthn.refuse_sign_count_regression = true;
        let s = c.resolve().expect("ok").settings;
        assert!(!s.webauthn_passkey_sign_in && !s.webauthn_allow_synced);
        assert!(s.webauthn_refuse_sign_count_regression);
    }

    /// SEC-58: an AAGUID list is only as good as the CAs checking it.
    #[test]
    fn webauthn_aaguids_need_ca_files_and_each_is_checked() {
        const AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";
        let dir = tempfile::tempdir().expect("dir");
        let ca = soft_token_ca(dir.path());
        let list = |items: &[&str]| Some(ListSetting::List(items.iter().map(|s| (*s).to_owned()).collect()));
        let with = |aaguids: &[&str], cas: &[&str]| {
            let mut c = webauthn_config();
            c.webauthn.aaguids = list(aaguids);
            c.webauthn.attestation_ca_files = list(cas);
            c.resolve()
        };
        let rule = with(&[AAGUID], &[&ca]).expect("ok").settings.webauthn_attestation.expect("rule");
        assert_eq!(rule.aaguids().len(), 1);
        // Written as an environment variable would: one comma-separated string.
        let mut c = webauthn_config();
        c.webauthn.aaguids = Some(ListSetting::Text(format!("{AAGUID}, {AAGUID}")));
        c.webauthn.attestation_ca_files = Some(ListSetting::Text(ca.clone()));
        assert!(c.resolve().expect("ok").settings.webauthn_attestation.is_some());
        // Empty lists are no rule at all.
        assert!(with(&[], &[]).expect("ok").settings.webauthn_attestation.is_none());

        let refused = |aaguids: &[&str], cas: &[&str]| with(aaguids, cas).expect_err("bad");
        let e = refused(&[AAGUID], &[]);
        assert_eq!(e.key, "webauthn.attestation_ca_files");
        assert!(e.message.contains("AAGUID alone"), "{}", e.message);
        assert_eq!(refused(&[], &[&ca]).key, "webauthn.aaguids");
        let e = refused(&["yubikey-5"], &[&ca]);
        assert_eq!(e.key, "webauthn.aaguids");
        assert!(e.message.contains("yubikey-5"), "{}", e.message);
        let missing = dir.path().join("missing.pem").display().to_string();
        let e = refused(&[AAGUID], &[&missing]);
        assert_eq!(e.key, "webauthn.attestation_ca_files");
        assert!(e.message.contains("missing.pem"), "{}", e.message);
        let junk = dir.path().join("junk.pem");
        fs::write(&junk, "not a certificate").expect("write");
        let e = refused(&[AAGUID], &[&junk.display().to_string()]);
        assert_eq!(e.key, "webauthn.attestation_ca_files");
        assert!(e.message.contains("junk.pem"), "{}", e.message);
    }

    #[test]
    fn webauthn_settings_read_from_a_file() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("twostep.toml");
        fs::write(
            &file,
            "listen = \"127.0.0.1:0\"\n[webauthn]\npasskey_sign_in = false\nallow_synced = false\naaguids = []\n\
             refuse_sign_count_regression = true\n",
        )
        .expect("write");
        let c = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert!(!c.webauthn.passkey_sign_in && !c.webauthn.allow_synced && c.webauthn.refuse_sign_count_regression);
        fs::write(&file, "[webauthn]\npasskey_signin = false\n").expect("write");
        let e = Config::load(Some(&file), &Overrides::default()).expect_err("typo");
        assert!(e.to_string().contains("passkey_signin"), "{e}");
    }

    #[test]
    fn enforce_from_takes_a_date_or_an_instant() {
        assert_eq!(parse_instant("2027-01-31").expect("date").secs(), 1_801_353_600);
        assert_eq!(parse_instant("2027-01-31T12:00:00Z").expect("instant").secs(), 1_801_396_800);
        assert_eq!(parse_instant("next tuesday").expect_err("bad").key, "policy.enforce_from");
    }

    #[test]
    fn trusted_proxies_are_a_list_of_ranges() {
        let mut c = Config { listen: "127.0.0.1:0".into(), secret_key: Some("ab".repeat(32)), ..Config::default() };
        assert!(c.resolve().expect("ok").trusted_proxies.is_empty());
        c.trusted_proxies = Some(ListSetting::Text("127.0.0.1/32, 10.0.0.0/8".into()));
        assert_eq!(c.resolve().expect("ok").trusted_proxies.len(), 2);
        c.trusted_proxies = Some(ListSetting::List(vec!["::1".into(), "fc00::/7".into()]));
        assert_eq!(c.resolve().expect("ok").trusted_proxies.len(), 2);
        c.trusted_proxies = Some(ListSetting::Text("10.0.0.1, proxy.internal".into()));
        assert_eq!(c.resolve().expect_err("bad").key, "trusted_proxies");
    }

    #[test]
    fn sign_up_caps_reach_the_settings_and_must_be_positive() {
        let mut c = Config { listen: "127.0.0.1:0".into(), secret_key: Some("ab".repeat(32)), ..Config::default() };
        let s = c.resolve().expect("ok").settings;
        assert_eq!((s.signups_per_source_per_hour, s.signups_per_email_per_hour), (20, 5));
        c.signup = SignupConfig { per_source_per_hour: 100, per_email_per_hour: 3 };
        let s = c.resolve().expect("ok").settings;
        assert_eq!((s.signups_per_source_per_hour, s.signups_per_email_per_hour), (100, 3));
        c.signup.per_email_per_hour = 0;
        assert_eq!(c.resolve().expect_err("bad").key, "signup.per_email_per_hour");
    }

    #[test]
    fn dev_mode_is_refused_beyond_loopback_unless_dev_mode_public() {
        let base = || Config {
            dev_mode: true,
            secret_key: Some("ab".repeat(32)),
            public_url: Some("https://id.example.com".into()),
            ..Config::default()
        };
        for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080"] {
            let e = Config { listen: listen.into(), ..base() }.resolve().expect_err(listen);
            assert_eq!(e.key, "dev_mode", "{listen}");
            assert!(e.message.contains("/dev/outbox") && e.message.contains("dev_mode_public"), "{}", e.message);
            let c = Config { listen: listen.into(), dev_mode_public: true, ..base() };
            assert!(c.resolve().expect("allowed when meant").dev_mode, "{listen}");
            let c = Config { listen: listen.into(), dev_mode: false, ..base() };
            assert!(!c.resolve().expect("no dev mode, no question").dev_mode);
        }
        for listen in ["127.0.0.1:8080", "[::1]:8080"] {
            assert!(Config { listen: listen.into(), ..base() }.resolve().expect(listen).dev_mode);
        }
    }

    #[test]
    fn database_password_is_masked() {
        assert_eq!(mask_url_password("postgres://u:secret@h/db"), "postgres://u:********@h/db");
    }
}
