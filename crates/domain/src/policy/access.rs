//! Forward-auth access rules: which requests through the operator's reverse
//! proxy pass, and with how many factors. Pure: the HTTP layer reads the
//! proxy's headers and the session; this module only decides.
//!
//! Rules are tried in order and the first that matches decides; none
//! matching falls to `default_policy`. A rule naming subjects cannot be
//! decided without knowing who asks, so an anonymous request that reaches
//! one is asked to sign in (the rule may well let them in afterwards).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::ip_range::IpRange;

/// What a matching rule asks of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Passes without a session.
    Bypass,
    /// Any full session (the password, or a remembered browser).
    OneFactor,
    /// A session in which a second factor was proven.
    TwoFactor,
    /// Never passes.
    Deny,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bypass" => Some(Self::Bypass),
            "one_factor" => Some(Self::OneFactor),
            "two_factor" => Some(Self::TwoFactor),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::OneFactor => "one_factor",
            Self::TwoFactor => "two_factor",
            Self::Deny => "deny",
        }
    }
}

/// Who a rule is for: an account by e-mail, or the members of an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Org(String),
}

impl Subject {
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, value) = s.split_once(':')?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        match kind.trim() {
            "user" => Some(Self::User(value.to_lowercase())),
            "org" => Some(Self::Org(value.to_owned())),
            _ => None,
        }
    }

    fn matches(&self, who: &Identity<'_>) -> bool {
        match self {
            Self::User(email) => who.email.eq_ignore_ascii_case(email),
            Self::Org(name) => who.orgs.iter().any(|o| o == name),
        }
    }
}

/// One rule as the configuration file spells it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSpec {
    pub domain: Vec<String>,
    pub path: Vec<String>,
    pub methods: Vec<String>,
    pub networks: Vec<String>,
    pub subject: Vec<String>,
    pub policy: String,
}

/// The `[access]` section as the configuration file spells it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSpec {
    pub default_policy: String,
    pub cookie_domains: Vec<String>,
    pub rules: Vec<RuleSpec>,
}

impl Default for AccessSpec {
    fn default() -> Self {
        Self { default_policy: "deny".to_owned(), cookie_domains: Vec::new(), rules: Vec::new() }
    }
}

/// A configuration mistake, with the key it is under.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct AccessError {
    pub key: String,
    pub message: String,
}

fn bad(key: String, message: impl Into<String>) -> AccessError {
    AccessError { key, message: message.into() }
}

/// A checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Lower-case host names; `*.example.com` matches any name below it.
    pub domains: Vec<String>,
    pub paths: Vec<regex::Regex>,
    /// Upper-case; empty: any.
    pub methods: Vec<String>,
    pub networks: Vec<IpRange>,
    pub subjects: Vec<Subject>,
    pub policy: Policy,
}

/// The checked `[access]` section.
#[derive(Clone, Debug)]
pub struct Access {
    pub default_policy: Policy,
    pub rules: Vec<Rule>,
    /// Domains the forward-auth cookie is issued for, lower-case.
    pub cookie_domains: Vec<String>,
}

impl Default for Access {
    /// No rules: everything is refused, as with an explicit `deny` default.
    fn default() -> Self {
        Self { default_policy: Policy::Deny, rules: Vec::new(), cookie_domains: Vec::new() }
    }
}

/// The most a path regex may compile to: rules are the operator's, but a
/// typo like `.{1000}{1000}` should be an error, not a gigabyte.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl AccessSpec {
    pub fn compile(&self) -> Result<Access, AccessError> {
        let default_policy = Policy::parse(&self.default_policy).ok_or_else(|| {
            bad("access.default_policy".into(), "must be one of bypass, one_factor, two_factor, deny")
        })?;
        let mut cookie_domains = Vec::new();
        for (i, d) in self.cookie_domains.iter().enumerate() {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_domain_name(&d) || !d.contains('.') {
                return Err(bad(format!("access.cookie_domains[{i}]"), "must be a domain name like example.com"));
            }
            cookie_domains.push(d);
        }
        let rules = self.rules.iter().enumerate().map(|(i, r)| r.compile(i)).collect::<Result<_, _>>()?;
        Ok(Access { default_policy, rules, cookie_domains })
    }
}

impl RuleSpec {
    fn compile(&self, i: usize) -> Result<Rule, AccessError> {
        let key = |field: &str| format!("access.rules[{i}].{field}");
        if self.domain.is_empty() {
            return Err(bad(key("domain"), "every rule names at least one domain"));
        }
        let mut domains = Vec::new();
        for d in &self.domain {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            let name = d.strip_prefix("*.").unwrap_or(&d);
            if !is_domain_name(name) {
                return Err(bad(key("domain"), format!("{d:?} is not a host name or *.name")));
            }
            domains.push(d);
        }
        let mut paths = Vec::new();
        for p in &self.path {
            let re = regex::RegexBuilder::new(p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| bad(key("path"), format!("{p:?} is not a valid regex: {e}")))?;
            paths.push(re);
        }
        let mut methods = Vec::new();
        for m in &self.methods {
            let m = m.trim().to_ascii_uppercase();
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad(key("methods"), format!("{m:?} is not an HTTP method")));
            }
            methods.push(m);
        }
        let networks = self
            .networks
            .iter()
            .map(|n| IpRange::parse_any(n))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(key("networks"), e.to_string()))?;
        let subjects = self
            .subject
            .iter()
            .map(|s| {
                Subject::parse(s).ok_or_else(|| bad(key("subject"), format!("{s:?} is not user:EMAIL or org:NAME")))
            })
            .collect::<Result<_, _>>()?;
        let policy = Policy::parse(&self.policy)
            .ok_or_else(|| bad(key("policy"), "must be one of bypass, one_factor, two_factor, deny"))?;
        Ok(Rule { domains, paths, methods, networks, subjects, policy })
    }
}

/// Letters, digits and hyphens in dot-separated labels.
fn is_domain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The request the proxy asks about, as the rules see it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Lower-case host, without port.
    pub host: String,
    /// Decoded and normalised (`normalise_path`).
    pub path: String,
    pub method: String,
    pub ip: Option<IpAddr>,
}

impl Target {
    /// From the original URL's parts; `None` when the URL is not an
    /// absolute http(s) URL with a host.
    pub fn from_url(url: &str, method: &str, ip: Option<IpAddr>) -> Option<Self> {
        let u = url::Url::parse(url).ok()?;
        if !matches!(u.scheme(), "http" | "https") {
            return None;
        }
        let host = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        Some(Self { host, path: normalise_path(u.path()), method: method.trim().to_ascii_uppercase(), ip })
    }
}

/// The path the upstream app will act on: percent-decoded, dot segments
/// resolved and repeated slashes merged (as nginx's `merge_slashes`). Rules
/// compare against this, so `/public/../admin` or `/%61dmin` cannot slip
/// past a rule on `^/admin`.
pub fn normalise_path(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if decoded.ends_with('/') && path.len() > 1 {
        path.push('/');
    }
    path
}

/// Who asks, once their session is known.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    pub email: &'a str,
    pub orgs: &'a [String],
}

/// Which rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    Rule(usize),
    Default,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    pub matched: Matched,
    /// The rule names subjects and nobody is signed in: sign in first.
    pub needs_identity: bool,
}

/// The first field of a rule a request does not meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mismatch {
    Domain,
    Path,
    Method,
    Network,
}

impl Rule {
    /// The field this rule does not match on (`None`: it matches, subjects aside).
    fn mismatch(&self, t: &Target) -> Option<Mismatch> {
        if !self.domains.iter().any(|d| domain_matches(d, &t.host)) {
            return Some(Mismatch::Domain);
        }
        if !self.paths.is_empty() && !self.paths.iter().any(|re| re.is_match(&t.path)) {
            return Some(Mismatch::Path);
        }
        if !self.methods.is_empty() && !self.methods.contains(&t.method) {
            return Some(Mismatch::Method);
        }
        if !self.networks.is_empty() && !t.ip.is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip))) {
            return Some(Mismatch::Network);
        }
        None
    }

    fn explain_mismatch(&self, m: Mismatch, t: &Target) -> String {
        match m {
            Mismatch::Domain => format!("domain {} is not one of {:?}", t.host, self.domains),
            Mismatch::Path => format!("path {} matches none of the path regexes", t.path),
            Mismatch::Method => format!("method {} is not one of {:?}", t.method, self.methods),
            Mismatch::Network => {
                let ip = t.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                format!("client address {ip} is in none of the networks")
            }
        }
    }
}

/// `*.example.com` matches names below example.com (not example.com itself).
fn domain_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(base) => {
            host.len() > base.len() + 1 && host.ends_with(base) && host[..host.len() - base.len()].ends_with('.')
        }
        None => pattern == host,
    }
}

/// Whether `host` is `domain` or a name below it.
pub fn within(host: &str, domain: &str) -> bool {
    host == domain || domain_matches(&format!("*.{domain}"), host)
}

impl Access {
    /// The first rule that matches, or the default. The hot path: nothing
    /// is formatted or allocated.
    pub fn decide(&self, t: &Target, who: Option<Identity<'_>>) -> Decision {
        self.walk(t, who, None)
    }

    /// `decide`, with a line per rule tried saying why it did or did not
    /// match (`twostep access check`).
    pub fn explain(&self, t: &Target, who: Option<Identity<'_>>) -> (Decision, Vec<String>) {
        let mut why = Vec::new();
        let d = self.walk(t, who, Some(&mut why));
        (d, why)
    }

    fn walk(&self, t: &Target, who: Option<Identity<'_>>, mut why: Option<&mut Vec<String>>) -> Decision {
        let noting = why.is_some();
        let mut note = |line: String| {
            if let Some(w) = why.as_deref_mut() {
                w.push(line);
            }
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let n = i + 1;
            if let Some(m) = rule.mismatch(t) {
                if noting {
                    note(format!("rule {n}: no match: {}", rule.explain_mismatch(m, t)));
                }
                continue;
            }
            if !rule.subjects.is_empty() {
                match who {
                    None => {
                        if noting {
                            note(format!("rule {n}: matches, but names subjects: sign-in needed to decide"));
                        }
                        return Decision { policy: rule.policy, matched: Matched::Rule(i), needs_identity: true };
                    }
                    Some(w) if !rule.subjects.iter().any(|s| s.matches(&w)) => {
                        if noting {
                            note(format!("rule {n}: no match: {} is none of its subjects", w.email));
                        }
                        continue;
                    }
                    Some(_) => {}
                }
            }
            if noting {
                note(format!("rule {n}: matches: {}", rule.policy.as_str()));
            }
            return Decision { policy: rule.policy, matched: Matched::Rule(i), needs_identity: false };
        }
        if noting {
            note(format!("no rule matches: default policy {}", self.default_policy.as_str()));
        }
        Decision { policy: self.default_policy, matched: Matched::Default, needs_identity: false }
    }

    /// Where a browser may be sent back to after signing in: an absolute
    /// http(s) URL (plain http only when `allow_http`, i.e. the portal
    /// itself is plain http on loopback) on a host within one of the
    /// cookie domains, with no user name. Anything else is refused: an
    /// open redirect would lend our sign-in page to phishing.
    pub fn return_target(&self, raw: &str, allow_http: bool) -> Option<String> {
        if raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
            return None;
        }
        let u = url::Url::parse(raw).ok()?;
        let scheme_ok = u.scheme() == "https" || (allow_http && u.scheme() == "http");
        if !scheme_ok || !u.username().is_empty() || u.password().is_some() {
            return None;
        }
        let Some(url::Host::Domain(host)) = u.host() else { return None };
        self.cookie_domain_for(host)?;
        Some(u.to_string())
    }

    /// The configured cookie domain `host` lies within (the longest).
    pub fn cookie_domain_for(&self, host: &str) -> Option<&str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.cookie_domains.iter().filter(|d| within(&host, d)).max_by_key(|d| d.len()).map(String::as_str)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
