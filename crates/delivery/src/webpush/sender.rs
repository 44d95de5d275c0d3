//! Sending one encrypted, VAPID-signed message to a push service, and
//! sorting its answer.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Sends Web Push messages, one POST per call and never a retry: like the
/// other adapters, it sorts failures and leaves retrying to the caller.
pub struct WebPushSender {
    client: reqwest::Client,
    /// Whether endpoints may be on loopback or private addresses (tests'
    /// local push services); off unless the operator says otherwise.
    allow_private: bool,
    key: VapidKey,
    public_key: String,
    subject: String,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WebPushSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPushSender")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl WebPushSender {
    /// `subject` is the VAPID `sub` claim, "mailto:ops@example.org" or an
    /// https URL: how a push service operator reaches us when our traffic
    /// misbehaves; some push services refuse tokens without one.
    pub fn new(key: VapidKey, subject: String) -> Result<Self, ConfigError> {
        // Trimmed: it usually comes from a config file or an environment variable.
        let subject = if subject.trim().len() == subject.len() { subject } else { subject.trim().to_owned() };
        check_subject(&subject).map_err(|reason| ConfigError::Invalid { field: "webpush.subject", reason })?;
        Ok(Self {
            client: public_only_client(system_lookup())?,
            allow_private: false,
            public_key: key.public_key_base64url(),
            key,
            subject,
            clock: Arc::new(SystemClock),
        })
    }

    /// The JWT's `exp` comes from this clock (the system clock by default),
    /// so tests can pin it.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Lets endpoints be on loopback and private addresses: for a local
    /// push service in tests (`push.allow_private_endpoints`), never for a
    /// server whose users are not all trusted.
    pub fn allow_private_endpoints(mut self) -> Result<Self, ConfigError> {
        self.client = http::client()?;
        self.allow_private = true;
        Ok(self)
    }

    /// Resolves names with `lookup` (still refusing private answers), so
    /// tests can point a public-looking name anywhere.
    #[cfg(test)]
    pub(super) fn with_lookup(mut self, lookup: Arc<Lookup>) -> Self {
        self.client = public_only_client(lookup).expect("client builds");
        self
    }

    /// The `applicationServerKey` for subscribing, as
    /// [`VapidKey::public_key_base64url`].
    pub fn public_key_base64url(&self) -> &str {
        &self.public_key
    }

    /// Encrypts `payload` for `sub`, signs a VAPID JWT for the endpoint's
    /// origin, and POSTs it once. Any 2xx is `Ok` (push services answer 201);
    /// 404 and 410 are [`WebPushError::Gone`]; 408, 429, 5xx, timeouts and
    /// network failures are transient; anything else is permanent. Plain
    /// http endpoints are sent to (tests use them): refuse them at
    /// registration with `WebPushSubscription::check` (the domain does). Error texts name the endpoint's
    /// host only, never its path (a capability) or the payload. Unless
    /// [`Self::allow_private_endpoints`], an endpoint that is, or resolves
    /// only to, a non-public address ([`is_public_address`]) is refused as
    /// permanent before any connection: never `Gone`, so whether something
    /// answers there cannot be read off the subscription.
    pub async fn send(&self, sub: &WebPushSubscription, payload: &[u8], ttl_secs: u32) -> Result<(), WebPushError> {
        let url = reqwest::Url::parse(&sub.endpoint)
            .map_err(|_| WebPushError::InvalidSubscription("endpoint is not a URL".into()))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(WebPushError::InvalidSubscription("endpoint is not an http(s) URL".into()));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        // The resolver sees names only; an address in the URL is checked here.
        if !self.allow_private && literal.is_some_and(|ip| !is_public_address(ip)) {
            return Err(WebPushError::Permanent(format!("push service {host}: not a public address")));
        }
        let (ua_public, auth) = parse_keys(&sub.keys)?;
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let body = encrypt_for(&ua_public, &auth, payload, &SecretKey::random(&mut OsRng), &salt)?;

        // RFC 8292 §2: the audience is the origin, port included when it is
        // not the scheme's default.
        let audience = url.origin().ascii_serialization();
        let exp = self.clock.now().secs().saturating_add(JWT_LIFETIME_SECS);
        let jwt = vapid_jwt(&self.key, &audience, exp, &self.subject);

        let request = self
            .client
            .post(url)
            .timeout(Duration::from_secs(TIMEOUT_SECS))
            .header("TTL", ttl_secs.to_string())
            // Someone is waiting at a sign-in page for this message; RFC 8030
            // §5.3's `high` asks for delivery now, even on a phone's battery.
            .header("Urgency", "high")
            .header(CONTENT_ENCODING, "aes128gcm")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(AUTHORIZATION, format!("vapid t={jwt}, k={}", self.public_key))
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                return Err(if refused_address(&e) {
                    WebPushError::Permanent(format!("push service {host}: resolves to no public address"))
                } else if e.is_builder() {
                    WebPushError::Permanent(format!("push service {host}: request not built: {}", error_chain(&e)))
                } else if e.is_timeout() {
                    WebPushError::Transient(format!("push service {host}: no answer within {TIMEOUT_SECS}s"))
                } else {
                    WebPushError::Transient(format!("push service {host}: {}", error_chain(&e)))
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(WebPushError::Gone);
        }
        let mut text = format!("push service {host} answered {status}");
        let detail = read_detail(response).await;
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(&detail);
        }
        Err(if is_transient(status) { WebPushError::Transient(text) } else { WebPushError::Permanent(text) })
    }
}

pub(super) fn refused_address(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<NotPublic>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub(super) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// The start of a push service's error body, flattened to one line. The
/// service only ever saw ciphertext, so it cannot echo the payload.
pub(super) async fn read_detail(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= 4 * MAX_DETAIL {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let mut out: String = text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_DETAIL).collect();
    if text.trim().chars().count() > MAX_DETAIL {
        out.push('…');
    }
    out
}
