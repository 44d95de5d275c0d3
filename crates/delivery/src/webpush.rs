//! Web Push: waking an installed companion page so it can ask its owner to
//! approve a sign-in.
//!
//! A browser that installed the companion page hands us a push subscription
//! (its push service's endpoint plus two keys). To wake it we POST one
//! encrypted message to that endpoint:
//!
//! ```text
//! POST <endpoint>
//! TTL: 60
//! Urgency: high
//! Content-Encoding: aes128gcm
//! Content-Type: application/octet-stream
//! Authorization: vapid t=<ES256 JWT {aud, exp, sub}>, k=<our public key>
//!
//! <salt ‖ rs ‖ idlen ‖ ephemeral public key ‖ AES-128-GCM(payload ‖ 0x02)>
//! ```
//!
//! - The body is encrypted for the subscriber alone (RFC 8291 on RFC 8188's
//!   `aes128gcm`): the push service, Google's or Apple's or Mozilla's, sees
//!   only ciphertext. A fresh ephemeral key and salt per message mean two
//!   messages never share a content key.
//! - The `Authorization` header is VAPID (RFC 8292): a browser subscribes with
//!   our public key as its `applicationServerKey`, and its push service then
//!   accepts messages for that subscription only when signed by our private
//!   key. So a leaked endpoint alone does not let anyone else wake the device.
//! - The push service answers quickly and delivers later; `TTL` bounds how
//!   long it may hold the message. A 404 or 410 means the subscription is dead
//!   for good ([`WebPushError::Gone`]), and the caller should forget it.
//!
//! Everything is RustCrypto (`p256`, `hkdf`, `aes-gcm`); no OpenSSL. The
//! `web-push-native` crate was not used: it cannot fix the ephemeral key and
//! salt (so RFC 8291's example cannot be checked), leaves the port out of the
//! VAPID audience (so `http://127.0.0.1:PORT` test endpoints fail), reads the
//! wall clock itself, and brings a second RustCrypto generation (hkdf 0.13,
//! sha2 0.11) plus `jwt-simple`.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, Key, KeyInit, Nonce};
use data_encoding::BASE64URL_NOPAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use rand::rngs::OsRng;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use sha2::Sha256;
use twostep_domain::factors::push::{WebPushKeys, WebPushSubscription, decode_b64url};
use twostep_domain::ports::{Clock, SystemClock};
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::http::{self, error_chain};

/// The largest payload one message can carry. RFC 8291 §4 allows a single
/// record, and RFC 8030 §7.2 only obliges push services to take 4096 bytes of
/// body: minus the 86-byte header, the 16-byte tag and the delimiter.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// The `rs` we announce. Any value above the one record's length would do;
/// 4096 is what RFC 8291's example uses, so its bytes come out exactly.
const RECORD_SIZE: u32 = 4096;
const SALT_LEN: usize = 16;
/// An uncompressed P-256 point: 0x04 ‖ x ‖ y.
const POINT_LEN: usize = 65;
const HEADER_LEN: usize = SALT_LEN + 4 + 1 + POINT_LEN;
const TAG_LEN: usize = 16;
const AUTH_LEN: usize = 16;
/// RFC 8188's delimiter of the last (here: only) record.
const LAST_RECORD: u8 = 2;

/// RFC 8292 §2 caps `exp` at 24 hours ahead; half that leaves room for a
/// push service whose clock runs ahead of ours.
pub const JWT_LIFETIME_SECS: i64 = 12 * 60 * 60;

/// A push service that has not answered by then is treated as down; the
/// caller may try again later rather than hold a worker.
const TIMEOUT_SECS: u64 = 10;

/// Push service error bodies are short notes for developers; more is noise.
const MAX_DETAIL: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// The push service says the subscription no longer exists (404, 410):
    /// the device unsubscribed or the browser dropped it. Forget it.
    #[error("subscription gone")]
    Gone,
    /// Worth trying again later: 408, 429, 5xx, a timeout, no connection.
    #[error("transient: {0}")]
    Transient(String),
    /// Sending the same request again would get the same answer.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The subscription cannot be sent to at all (bad keys, not a URL).
    #[error("invalid subscription: {0}")]
    InvalidSubscription(String),
}

/// A body that [`decrypt`] could not open. Deliberately vague beyond the
/// step that failed, as AEAD failures should be.
#[derive(Debug, thiserror::Error)]
#[error("web push body not decrypted: {0}")]
pub struct DecryptError(&'static str);

/// The server's VAPID key pair (ES256, P-256). Browsers learn the public
/// half as `applicationServerKey` when they subscribe, so replacing this key
/// silently orphans every existing subscription: store it, don't regenerate.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey").field("public", &self.public_key_base64url()).finish_non_exhaustive()
    }
}

impl VapidKey {
    pub fn generate() -> Self {
        Self { signing: SigningKey::random(&mut OsRng) }
    }

    /// The form [`Self::to_base64url`] writes: the 32-byte private scalar,
    /// base64url without padding (the format of `web-push generate-vapid-keys`
    /// and most other tools).
    pub fn from_base64url(private_scalar_b64url: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid { field: "webpush.vapid_private_key", reason: reason.into() };
        let bytes = Zeroizing::new(decode_b64url(private_scalar_b64url).ok_or_else(|| invalid("not base64url"))?);
        if bytes.len() != 32 {
            return Err(invalid("must be 32 bytes: a P-256 private scalar"));
        }
        let signing = SigningKey::from_slice(&bytes)
            .map_err(|_| invalid("not a P-256 private key (zero, or not below the order)"))?;
        Ok(Self { signing })
    }

    pub fn to_base64url(&self) -> String {
        let bytes = Zeroizing::new(<[u8; 32]>::from(self.signing.to_bytes()));
        BASE64URL_NOPAD.encode(bytes.as_slice())
    }

    /// The uncompressed point, base64url: what the companion page passes to
    /// `pushManager.subscribe({ applicationServerKey })`.
    pub fn public_key_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(self.signing.verifying_key().to_encoded_point(false).as_bytes())
    }
}

/// Whether a push endpoint may be sent to at this address. Endpoints come
/// from account holders, so without this an account could aim our POSTs at
/// the deployment's own network (SSRF) and read the answer's class off its
/// subscription (a 404 or 410 forgets it). Push services are on the public
/// internet: refused are loopback, private (RFC 1918, unique-local),
/// shared (CGNAT), link-local (the 169.254.169.254 and fd00:ec2::254
/// metadata services), multicast, broadcast, documentation and reserved
/// ranges, and IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that address.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::a.b.c.d (IPv4-compatible, deprecated) and 64:ff9b::a.b.c.d (NAT64).
    if seg[..6] == [0; 6] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(embedded(seg[6], seg[7]));
    }
    // 2002::/16, 6to4: the IPv4 address is the next 32 bits.
    if seg[0] == 0x2002 {
        return is_public_v4(embedded(seg[1], seg[2]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (seg[0] & 0xfe00) == 0xfc00
        // fe80::/10 link-local, and fec0::/10, the old site-local.
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation.
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        // 100::/64, discard-only.
        || seg[..4] == [0x100, 0, 0, 0])
}

/// A host name's addresses (port 0: the connector sets the URL's).
type Lookup = dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync;

/// Every name a push request connects to goes through this resolver, which
/// hands the connector only public addresses: the check and the connection
/// see the same answer, so a name that resolves differently the second
/// time (DNS rebinding) cannot slip past it.
struct PublicOnlyResolver {
    lookup: Arc<Lookup>,
}

/// The refusal, recognised in `send` to report it as permanent.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
struct NotPublic(String);

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = lookup(host.clone()).await?;
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public_address(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn system_lookup() -> Arc<Lookup> {
    Arc::new(|host: String| {
        Box::pin(async move { tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect) })
    })
}

fn public_only_client(lookup: Arc<Lookup>) -> Result<reqwest::Client, ConfigError> {
    http::builder()
        .dns_resolver(Arc::new(PublicOnlyResolver { lookup }))
        // Through a proxy the proxy would pick the address, unchecked.
        .no_proxy()
        .build()
        .map_err(|e| ConfigError::Client(error_chain(&e)))
}

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
    fn with_lookup(mut self, lookup: Arc<Lookup>) -> Self {
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

fn refused_address(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<NotPublic>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// The start of a push service's error body, flattened to one line. The
/// service only ever saw ciphertext, so it cannot echo the payload.
async fn read_detail(mut response: reqwest::Response) -> String {
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

fn check_subject(subject: &str) -> Result<(), String> {
    if subject.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    if let Some(address) = subject.strip_prefix("mailto:") {
        return match address.split_once('@') {
            Some((user, domain)) if !user.is_empty() && !domain.is_empty() => Ok(()),
            _ => Err("a mailto: subject needs an address".into()),
        };
    }
    match reqwest::Url::parse(subject) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some() => Ok(()),
        _ => Err("must be a mailto: or https: URL (RFC 8292 §2.1)".into()),
    }
}

fn parse_keys(keys: &WebPushKeys) -> Result<(PublicKey, Zeroizing<[u8; AUTH_LEN]>), WebPushError> {
    keys.decode().map_err(|reason| WebPushError::InvalidSubscription(reason.into()))
}

/// The content key and nonce of RFC 8291 §3.4 (IKM from the ECDH secret and
/// the auth secret, bound to both public keys) and RFC 8188 §2.2.
struct RecordKeys {
    cek: Zeroizing<[u8; 16]>,
    nonce: [u8; 12],
}

fn record_keys(ecdh_secret: &[u8], auth: &[u8], ua_public: &[u8], as_public: &[u8], salt: &[u8]) -> RecordKeys {
    const OK: &str = "HKDF-SHA-256 can expand to 32 bytes or fewer";
    let mut ikm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand_multi_info(&[b"WebPush: info\0", ua_public, as_public], ikm.as_mut_slice())
        .expect(OK);
    let prk = Hkdf::<Sha256>::new(Some(salt), ikm.as_slice());
    let mut cek = Zeroizing::new([0u8; 16]);
    prk.expand(b"Content-Encoding: aes128gcm\0", cek.as_mut_slice()).expect(OK);
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).expect(OK);
    RecordKeys { cek, nonce }
}

fn encrypt_for(
    ua_public: &PublicKey,
    auth: &[u8; AUTH_LEN],
    payload: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, WebPushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WebPushError::Permanent(format!(
            "payload of {} bytes is over Web Push's {MAX_PAYLOAD}-byte limit",
            payload.len()
        )));
    }
    let as_public = as_secret.public_key().to_encoded_point(false);
    let ua_point = ua_public.to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    let keys = record_keys(shared.raw_secret_bytes(), auth, ua_point.as_bytes(), as_public.as_bytes(), salt);

    let mut record = Zeroizing::new(Vec::with_capacity(payload.len() + 1));
    record.extend_from_slice(payload);
    record.push(LAST_RECORD);
    let ciphertext = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(keys.cek.as_slice()))
        .encrypt(Nonce::from_slice(&keys.nonce), record.as_slice())
        .map_err(|_| WebPushError::Permanent("payload not encrypted".into()))?;

    let mut body = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65); // idlen: the key id is the ephemeral public key
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&ciphertext);
    Ok(body)
}

/// The `aes128gcm` body [`WebPushSender::send`] posts, with the ephemeral
/// private key (`as_private`, a 32-byte scalar) and `salt` chosen by the
/// caller instead of at random. For known-answer tests (RFC 8291's example);
/// reusing a key and salt for two messages would reuse the content key.
pub fn encrypt(
    keys: &WebPushKeys,
    payload: &[u8],
    as_private: &[u8],
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, WebPushError> {
    let (ua_public, auth) = parse_keys(keys)?;
    let as_secret = (as_private.len() == 32)
        .then(|| SecretKey::from_slice(as_private).ok())
        .flatten()
        .ok_or_else(|| WebPushError::Permanent("as_private is not a P-256 private scalar".into()))?;
    encrypt_for(&ua_public, &auth, payload, &as_secret, salt)
}

/// Opens an `aes128gcm` Web Push body as the subscriber would, given its
/// private key (the 32-byte scalar behind `p256dh`) and the auth secret.
/// twostep never receives pushes: this exists for receivers written in Rust
/// (a CLI companion behind a push service) and for tests, which can play the
/// subscriber with a `VapidKey::generate()` key pair: its
/// `public_key_base64url()` is a valid `p256dh`, and its `to_base64url()`
/// decodes to the scalar this takes. Only single-record bodies (all RFC 8291
/// allows) are accepted; padding is removed.
pub fn decrypt(ua_private: &[u8], auth_secret: &[u8], body: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if ua_private.len() != 32 {
        return Err(DecryptError("the private key must be a 32-byte scalar"));
    }
    let ua_secret =
        SecretKey::from_slice(ua_private).map_err(|_| DecryptError("the private key is not a P-256 scalar"))?;
    if auth_secret.len() != AUTH_LEN {
        return Err(DecryptError("the auth secret must be 16 bytes"));
    }
    if body.len() < HEADER_LEN {
        return Err(DecryptError("shorter than the aes128gcm header"));
    }
    let (salt, rest) = body.split_at(SALT_LEN);
    let (rs, rest) = rest.split_at(4);
    let record_size = u32::from_be_bytes([rs[0], rs[1], rs[2], rs[3]]);
    let (idlen, rest) = rest.split_at(1);
    if usize::from(idlen[0]) != POINT_LEN {
        return Err(DecryptError("the key id is not a 65-byte public key"));
    }
    let (key_id, ciphertext) = rest.split_at(POINT_LEN);
    let as_public = PublicKey::from_sec1_bytes(key_id).map_err(|_| DecryptError("the key id is not a P-256 point"))?;
    if ciphertext.len() < TAG_LEN + 1 || record_size < 18 {
        return Err(DecryptError("the record is too short"));
    }
    if usize::try_from(record_size).is_ok_and(|rs| ciphertext.len() > rs) {
        return Err(DecryptError("more than one record"));
    }
    let ua_point = ua_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let keys = record_keys(shared.raw_secret_bytes(), auth_secret, ua_point.as_bytes(), key_id, salt);
    let record = Zeroizing::new(
        Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(keys.cek.as_slice()))
            .decrypt(Nonce::from_slice(&keys.nonce), ciphertext)
            .map_err(|_| DecryptError("authentication failed"))?,
    );
    // RFC 8188 §2: the plaintext, one delimiter, then any number of zeros.
    match record.iter().rposition(|&b| b != 0) {
        Some(end) if record[end] == LAST_RECORD => Ok(record[..end].to_vec()),
        _ => Err(DecryptError("no last-record delimiter")),
    }
}

/// The VAPID JWT (RFC 8292 §2): ES256 over `{"typ":"JWT","alg":"ES256"}`
/// and `{"aud","exp","sub"}`, in that order. p256 signs with RFC 6979
/// nonces, so the same inputs give the same token.
pub fn vapid_jwt(key: &VapidKey, aud: &str, exp: i64, sub: &str) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    // Written out rather than derived so the member order (RFC 8292's
    // example's) cannot change with a serde_json feature elsewhere.
    let claims =
        format!(r#"{{"aud":{},"exp":{exp},"sub":{}}}"#, serde_json::Value::from(aud), serde_json::Value::from(sub));
    let signing_input = format!("{header}.{}", BASE64URL_NOPAD.encode(claims.as_bytes()));
    let signature: Signature = key.signing.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&signature.to_bytes()))
}

/// The claims of a VAPID JWT whose signature held.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct VapidClaims {
    pub aud: String,
    pub exp: i64,
    pub sub: String,
}

/// Checks a VAPID JWT the way a push service does: an ES256 header, a valid
/// signature under `public_key_b64url` (the `k=` value), and `aud`/`exp`/`sub`
/// claims, which are returned for the caller to judge (it knows the expected
/// audience and the time). For tests and local push services.
pub fn verify_vapid_jwt(jwt: &str, public_key_b64url: &str) -> Option<VapidClaims> {
    let mut parts = jwt.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    let key = VerifyingKey::from_sec1_bytes(&decode_b64url(public_key_b64url)?).ok()?;
    let signature = Signature::from_slice(&BASE64URL_NOPAD.decode(signature.as_bytes()).ok()?).ok()?;
    let signing_input_len = jwt.len() - jwt.rsplit('.').next()?.len() - 1;
    key.verify(&jwt.as_bytes()[..signing_input_len], &signature).ok()?;
    serde_json::from_slice(&BASE64URL_NOPAD.decode(claims.as_bytes()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use twostep_testkit::{FakeClock, Receiver, closed_port};

    use super::*;

    // RFC 8291 §5 and Appendix A.
    const RFC_PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const RFC_UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const RFC_AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const RFC_BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    // RFC 8292 §2.4.
    const RFC8292_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA";
    const RFC8292_KEY: &str = "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";

    const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const PAYLOAD: &[u8] = br#"{"challenge":"ch_0194f1c2secret"}"#;

    fn b64(text: &str) -> Vec<u8> {
        BASE64URL_NOPAD.decode(text.as_bytes()).expect("test vectors are base64url")
    }

    fn rfc_keys() -> WebPushKeys {
        WebPushKeys { p256dh: RFC_UA_PUBLIC.into(), auth: RFC_AUTH.into() }
    }

    fn rfc_salt() -> [u8; 16] {
        b64(RFC_SALT).try_into().expect("a 16-byte salt")
    }

    #[test]
    fn rfc8291_example_encrypts_to_the_rfc_body_byte_for_byte() {
        let body = encrypt(&rfc_keys(), RFC_PLAINTEXT.as_bytes(), &b64(RFC_AS_PRIVATE), &rfc_salt())
            .expect("the RFC's keys are valid");
        assert_eq!(BASE64URL_NOPAD.encode(&body), RFC_BODY);
        // The header carries the RFC's application server public key as key id.
        assert_eq!(&body[21..86], b64(RFC_AS_PUBLIC).as_slice());
    }

    #[test]
    fn rfc8291_example_decrypts_with_the_user_agent_key() {
        let plaintext = decrypt(&b64(RFC_UA_PRIVATE), &b64(RFC_AUTH), &b64(RFC_BODY)).expect("the RFC's body opens");
        assert_eq!(plaintext, RFC_PLAINTEXT.as_bytes());
    }

    #[test]
    fn decrypt_refuses_tampering_wrong_keys_and_garbage() {
        let body = b64(RFC_BODY);
        let (ua, auth) = (b64(RFC_UA_PRIVATE), b64(RFC_AUTH));
        let mut flipped = body.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decrypt(&ua, &auth, &flipped).is_err(), "tag tampered");
        let mut salted = body.clone();
        salted[0] ^= 1;
        assert!(decrypt(&ua, &auth, &salted).is_err(), "salt tampered");
        let mut wrong_auth = auth.clone();
        wrong_auth[0] ^= 1;
        assert!(decrypt(&ua, &wrong_auth, &body).is_err(), "wrong auth secret");
        let other = b64(&VapidKey::generate().to_base64url());
        assert!(decrypt(&other, &auth, &body).is_err(), "wrong private key");
        for garbage in [&b""[..], &body[..50], &body[..86], &body[..100]] {
            assert!(decrypt(&ua, &auth, garbage).is_err(), "{} bytes", garbage.len());
        }
        assert!(decrypt(&ua[..31], &auth, &body).is_err());
        assert!(decrypt(&[0u8; 32], &auth, &body).is_err());
        assert!(decrypt(&ua, &auth[..15], &body).is_err());
    }

    #[test]
    fn fresh_keys_round_trip_from_empty_to_the_largest_payload() {
        let ua = VapidKey::generate();
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        let keys = WebPushKeys { p256dh: ua.public_key_base64url(), auth: BASE64URL_NOPAD.encode(&auth) };
        let ephemeral = VapidKey::generate();
        let big = vec![0x5a; MAX_PAYLOAD];
        for payload in [&b""[..], PAYLOAD, &[0u8; 7][..], &big] {
            let body = encrypt(&keys, payload, &b64(&ephemeral.to_base64url()), &[7; 16]).expect("valid keys");
            assert!(body.len() <= RECORD_SIZE as usize, "fits the 4096 bytes push services must take");
            let opened = decrypt(&b64(&ua.to_base64url()), &auth, &body).expect("opens");
            assert_eq!(opened, payload, "trailing zeros in the payload survive the padding rule");
        }
        let err = encrypt(&keys, &vec![0; MAX_PAYLOAD + 1], &b64(&ephemeral.to_base64url()), &[7; 16])
            .expect_err("one record only");
        assert!(matches!(err, WebPushError::Permanent(_)), "{err:?}");
        assert!(encrypt(&keys, PAYLOAD, &[0; 32], &[7; 16]).is_err(), "zero is no private key");
    }

    #[test]
    fn rfc8292_example_token_verifies_and_our_signing_input_matches_it() {
        let claims = verify_vapid_jwt(RFC8292_JWT, RFC8292_KEY).expect("the RFC's token verifies with its key");
        assert_eq!(
            claims,
            VapidClaims {
                aud: "https://push.example.net".into(),
                exp: 1_453_523_768,
                sub: "mailto:push@example.com".into()
            }
        );
        // Same claims, our encoding: header and claims identical to the RFC's
        // (only the randomised ECDSA signature differs).
        let ours =
            vapid_jwt(&VapidKey::generate(), "https://push.example.net", 1_453_523_768, "mailto:push@example.com");
        let signing_input = |jwt: &str| jwt.rsplit_once('.').map(|(input, _)| input.to_owned());
        assert_eq!(signing_input(&ours), signing_input(RFC8292_JWT));
        // One claim changed and the RFC's signature no longer holds.
        let parts: Vec<&str> = RFC8292_JWT.split('.').collect();
        let claims = String::from_utf8(b64(parts[1])).expect("utf-8").replace("example.net", "example.org");
        let forged = format!("{}.{}.{}", parts[0], BASE64URL_NOPAD.encode(claims.as_bytes()), parts[2]);
        assert_eq!(verify_vapid_jwt(&forged, RFC8292_KEY), None);
        assert_eq!(verify_vapid_jwt(RFC8292_JWT, &VapidKey::generate().public_key_base64url()), None);
    }

    #[test]
    fn vapid_jwt_is_es256_over_aud_exp_sub_and_verifies_with_p256() {
        let key = VapidKey::generate();
        let jwt = vapid_jwt(&key, "https://fcm.googleapis.com", NOW + JWT_LIFETIME_SECS, "mailto:ops@example.org");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(b64(parts[0]), br#"{"typ":"JWT","alg":"ES256"}"#);
        assert_eq!(
            String::from_utf8(b64(parts[1])).expect("utf-8"),
            format!(r#"{{"aud":"https://fcm.googleapis.com","exp":{},"sub":"mailto:ops@example.org"}}"#, NOW + 43_200)
        );
        // Checked here with p256's verifier directly, not only through
        // `verify_vapid_jwt`: raw r ‖ s, SHA-256, the uncompressed key.
        let signature = b64(parts[2]);
        assert_eq!(signature.len(), 64, "JWS ES256 is r ‖ s, not DER");
        let verifying = VerifyingKey::from_sec1_bytes(&b64(&key.public_key_base64url())).expect("a P-256 point");
        let signature = Signature::from_slice(&signature).expect("r ‖ s");
        verifying.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).expect("the signature holds");
        assert!(verifying.verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &signature).is_err());
        assert_eq!(verify_vapid_jwt(&jwt, &VapidKey::generate().public_key_base64url()), None);
        // Deterministic (RFC 6979): the same inputs sign the same.
        assert_eq!(
            jwt,
            vapid_jwt(&key, "https://fcm.googleapis.com", NOW + JWT_LIFETIME_SECS, "mailto:ops@example.org")
        );
    }

    #[test]
    fn vapid_key_round_trips_and_bad_keys_are_config_errors() {
        let key = VapidKey::generate();
        let stored = key.to_base64url();
        assert_eq!(stored.len(), 43);
        let back = VapidKey::from_base64url(&stored).expect("round trip");
        assert_eq!(back.public_key_base64url(), key.public_key_base64url());
        assert_eq!(back.to_base64url(), stored);
        assert_eq!(b64(&key.public_key_base64url()).len(), 65);
        assert_eq!(b64(&key.public_key_base64url())[0], 0x04);
        // The RFC 8291 key pair: private in, the RFC's public out.
        assert_eq!(VapidKey::from_base64url(RFC_AS_PRIVATE).expect("valid").public_key_base64url(), RFC_AS_PUBLIC);
        assert!(VapidKey::from_base64url(&format!(" {stored}\n")).is_ok(), "whitespace from a config file");

        let order = data_encoding::HEXUPPER
            .decode(b"FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
            .expect("hex");
        let order = BASE64URL_NOPAD.encode(&order); // n, the group order
        let zero = BASE64URL_NOPAD.encode(&[0; 32]);
        let short = BASE64URL_NOPAD.encode(&[1; 31]);
        let long = BASE64URL_NOPAD.encode(&[1; 33]);
        for bad in ["", "not base64!", zero.as_str(), short.as_str(), long.as_str(), order.as_str(), RFC_UA_PUBLIC] {
            let err = VapidKey::from_base64url(bad).expect_err(bad);
            assert!(matches!(err, ConfigError::Invalid { field: "webpush.vapid_private_key", .. }), "{err:?}");
        }
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let key = VapidKey::from_base64url(RFC_AS_PRIVATE).expect("valid");
        let text = format!("{key:?}");
        assert!(!text.contains(RFC_AS_PRIVATE), "{text}");
        assert!(text.contains(RFC_AS_PUBLIC), "{text}");
        let sender = WebPushSender::new(key, "mailto:ops@example.org".into()).expect("valid");
        assert!(!format!("{sender:?}").contains(RFC_AS_PRIVATE));
        let sub = WebPushSubscription { endpoint: "https://push.example.net/x".into(), keys: rfc_keys() };
        let text = format!("{sub:?}");
        assert!(!text.contains(RFC_AUTH), "{text}");
        assert!(text.contains(RFC_UA_PUBLIC), "{text}");
    }

    #[test]
    fn subscription_json_is_what_browsers_send() {
        let json = serde_json::json!({
            "endpoint": "https://push.example.net/p/abc",
            "expirationTime": null,
            "keys": {"p256dh": RFC_UA_PUBLIC, "auth": RFC_AUTH},
        });
        let sub: WebPushSubscription = serde_json::from_value(json).expect("toJSON() shape");
        assert_eq!(sub.keys, rfc_keys());
        assert!(sub.keys.decode().is_ok());
    }

    fn bad_keys() -> Vec<WebPushKeys> {
        let good = rfc_keys();
        let ua = b64(RFC_UA_PUBLIC);
        let compressed = PublicKey::from_sec1_bytes(&ua).expect("valid").to_encoded_point(true);
        let mut off_curve = ua.clone();
        off_curve[64] ^= 1;
        let with = |p256dh: String, auth: String| WebPushKeys { p256dh, auth };
        vec![
            with(String::new(), good.auth.clone()),
            with("*not base64*".into(), good.auth.clone()),
            with(BASE64URL_NOPAD.encode(&[4; 65]), good.auth.clone()),
            with(BASE64URL_NOPAD.encode(&off_curve), good.auth.clone()),
            with(BASE64URL_NOPAD.encode(compressed.as_bytes()), good.auth.clone()),
            with(BASE64URL_NOPAD.encode(&ua[..64]), good.auth.clone()),
            with(BASE64URL_NOPAD.encode(&[0; 65]), good.auth.clone()),
            with(good.p256dh.clone(), String::new()),
            with(good.p256dh.clone(), "*".into()),
            with(good.p256dh.clone(), BASE64URL_NOPAD.encode(&[1; 15])),
            with(good.p256dh.clone(), BASE64URL_NOPAD.encode(&[1; 17])),
        ]
    }

    #[tokio::test]
    async fn bad_subscription_keys_are_invalid_subscription_never_a_panic() {
        let sender = sender();
        for keys in bad_keys() {
            let err = encrypt(&keys, PAYLOAD, &b64(RFC_AS_PRIVATE), &rfc_salt()).expect_err("refused");
            assert!(matches!(err, WebPushError::InvalidSubscription(_)), "{keys:?}: {err:?}");
            // Refused before any connection: nothing listens on port 9.
            let sub = WebPushSubscription { endpoint: "http://127.0.0.1:9/push".into(), keys };
            let err = sender.send(&sub, PAYLOAD, 60).await.expect_err("refused");
            assert!(matches!(err, WebPushError::InvalidSubscription(_)), "{err:?}");
        }
        for endpoint in ["", "not a url", "ftp://push.example.net/x", "mailto:a@b"] {
            let sub = WebPushSubscription { endpoint: endpoint.into(), keys: rfc_keys() };
            let err = sender.send(&sub, PAYLOAD, 60).await.expect_err("refused");
            assert!(matches!(err, WebPushError::InvalidSubscription(_)), "{endpoint}: {err:?}");
        }
    }

    #[test]
    fn new_wants_a_mailto_or_https_subject() {
        let new = |subject: &str| WebPushSender::new(VapidKey::generate(), subject.into());
        assert!(new("mailto:ops@example.org").is_ok());
        assert!(new(" https://example.org/contact ").is_ok());
        for bad in
            ["", "ops@example.org", "mailto:", "mailto:@example.org", "http://example.org", "https://", "mailto:a b@c"]
        {
            let err = new(bad).expect_err(bad);
            assert!(matches!(err, ConfigError::Invalid { field: "webpush.subject", .. }), "{bad}: {err:?}");
        }
    }

    // --- send() against a local push service ------------------------------

    /// A sender for the local push services below, on 127.0.0.1.
    fn sender() -> WebPushSender {
        public_sender().allow_private_endpoints().expect("client builds")
    }

    /// A sender as deployed: public addresses only.
    fn public_sender() -> WebPushSender {
        WebPushSender::new(VapidKey::generate(), "mailto:ops@example.org".into())
            .expect("valid config")
            .with_clock(Arc::new(FakeClock::at(NOW)))
    }

    /// A push service on 127.0.0.1 answering every request with `status`.
    async fn push_service(status: u16) -> Receiver {
        Receiver::answering(status, "{\"reason\":\"test\"}\n").await
    }

    /// A subscriber whose private key the test holds.
    fn subscriber(endpoint: String) -> (WebPushSubscription, Vec<u8>, [u8; 16]) {
        let ua = VapidKey::generate();
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        let keys = WebPushKeys { p256dh: ua.public_key_base64url(), auth: BASE64URL_NOPAD.encode(&auth) };
        (WebPushSubscription { endpoint, keys }, b64(&ua.to_base64url()), auth)
    }

    #[tokio::test]
    async fn send_posts_an_encrypted_vapid_signed_message() {
        let service = push_service(201).await;
        let origin = service.url.clone();
        let (sub, ua_private, auth) = subscriber(format!("{origin}/wpush/v2/gAAAA-token"));
        let sender = sender();
        sender.send(&sub, PAYLOAD, 60).await.expect("201 is delivered");

        let seen = service.only();
        let body = &seen.body;
        let header = |name: &str| seen.header(name);
        assert_eq!(seen.path, "/wpush/v2/gAAAA-token");
        assert_eq!(header("ttl"), "60");
        assert_eq!(header("urgency"), "high");
        assert_eq!(header("content-encoding"), "aes128gcm");
        assert_eq!(header("content-type"), "application/octet-stream");
        assert_eq!(header("content-length"), body.len().to_string());

        assert_eq!(decrypt(&ua_private, &auth, body).expect("the subscriber can read it"), PAYLOAD);
        assert!(!body.windows(PAYLOAD.len()).any(|w| w == PAYLOAD), "not in the clear");

        let authorization = header("authorization");
        let (jwt, k) = authorization
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=<jwt>, k=<key>");
        assert_eq!(k, sender.public_key_base64url());
        let claims = verify_vapid_jwt(jwt, k).expect("signed by the sender's key");
        assert_eq!(claims, VapidClaims { aud: origin, exp: NOW + 43_200, sub: "mailto:ops@example.org".into() });

        // Every message has its own ephemeral key and salt.
        sender.send(&sub, PAYLOAD, 60).await.expect("delivered again");
        let seen = service.requests();
        assert_ne!(seen[0].body[..86], seen[1].body[..86]);
    }

    #[tokio::test]
    async fn send_sorts_push_service_answers() {
        for (status, expect) in [
            (200, "ok"),
            (201, "ok"),
            (202, "ok"),
            (404, "gone"),
            (410, "gone"),
            (408, "transient"),
            (429, "transient"),
            (500, "transient"),
            (503, "transient"),
            (400, "permanent"),
            (401, "permanent"),
            (403, "permanent"),
            (413, "permanent"),
        ] {
            let service = push_service(status).await;
            let (sub, _, _) = subscriber(format!("{}/push/secret-path", service.url));
            let got = match sender().send(&sub, PAYLOAD, 60).await {
                Ok(()) => "ok",
                Err(WebPushError::Gone) => "gone",
                Err(WebPushError::Transient(text)) => {
                    assert_clean(&text);
                    "transient"
                }
                Err(WebPushError::Permanent(text)) => {
                    assert_clean(&text);
                    assert!(text.contains(&status.to_string()) && text.contains("reason"), "{text}");
                    "permanent"
                }
                Err(e) => panic!("{status}: {e:?}"),
            };
            assert_eq!(got, expect, "status {status}");
        }
    }

    fn assert_clean(text: &str) {
        assert!(!text.contains("challenge") && !text.contains("secret"), "leaked into {text:?}");
    }

    #[tokio::test]
    async fn send_to_nothing_listening_is_transient() {
        let port = closed_port().await;
        let (sub, _, _) = subscriber(format!("http://127.0.0.1:{port}/push/secret-path"));
        let err = sender().send(&sub, PAYLOAD, 60).await.expect_err("nobody answers");
        assert!(matches!(&err, WebPushError::Transient(text) if !text.contains("secret")), "{err:?}");
    }

    /// Resolves every name to `addrs`, as a hostile DNS answer would.
    fn lookup_to(addrs: Vec<IpAddr>) -> Arc<Lookup> {
        Arc::new(move |_host: String| {
            let addrs = addrs.clone();
            Box::pin(async move { Ok(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()) })
        })
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_any_connection_and_is_never_gone() {
        // Pen-test finding 5: `vm`, `127.0.0.1.nip.io` and
        // `metadata.google.internal` passed registration and we connected.
        // The push service here answers 410, which would forget the
        // subscription if it were reached: refused means not `Gone`.
        let service = push_service(410).await;
        let origin = service.url.clone();
        let port = origin.rsplit(':').next().expect("a port").to_owned();
        for addrs in [
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
            vec!["::ffff:127.0.0.1".parse().expect("ip")],
            vec!["169.254.169.254".parse().expect("ip"), "10.0.0.1".parse().expect("ip")],
        ] {
            let sender = public_sender().with_lookup(lookup_to(addrs.clone()));
            for endpoint in [
                format!("http://push.example.net:{port}/push/secret-path"),
                format!("https://127.0.0.1.nip.io:{port}/push/secret-path"),
            ] {
                let (sub, _, _) = subscriber(endpoint);
                let err = sender.send(&sub, PAYLOAD, 60).await.expect_err("refused");
                assert!(
                    matches!(&err, WebPushError::Permanent(t) if t.contains("no public address") && !t.contains("secret")),
                    "{addrs:?}: {err:?}"
                );
            }
        }
        // Through the system's resolver: `localhost` resolves to loopback
        // (`localhost.` may or may not resolve at all; it never connects).
        for host in ["localhost", "LOCALHOST", "localhost."] {
            let (sub, _, _) = subscriber(format!("http://{host}:{port}/push/secret-path"));
            let err = public_sender().send(&sub, PAYLOAD, 60).await.expect_err("refused");
            let refused = matches!(&err, WebPushError::Permanent(t) if t.contains("no public address"));
            assert!(refused || (host.ends_with('.') && !matches!(err, WebPushError::Gone)), "{host}: {err:?}");
        }
        // Addresses written into the URL never reach the resolver.
        for host in ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0x7f.1", "2130706433"] {
            let (sub, _, _) = subscriber(format!("http://{host}:{port}/push/secret-path"));
            let err = public_sender().send(&sub, PAYLOAD, 60).await.expect_err("refused");
            assert!(
                matches!(&err, WebPushError::Permanent(t) if t.contains("not a public address")),
                "{host}: {err:?}"
            );
        }
        assert!(service.requests().is_empty(), "nothing reached the push service");

        // Only the operator's switch lets loopback through: then the 410
        // arrives and is `Gone`.
        let sender =
            public_sender().allow_private_endpoints().expect("client").with_clock(Arc::new(FakeClock::at(NOW)));
        let (sub, _, _) = subscriber(format!("{origin}/push/secret-path"));
        assert!(matches!(sender.send(&sub, PAYLOAD, 60).await, Err(WebPushError::Gone)));
    }

    #[tokio::test]
    async fn a_name_with_public_and_private_addresses_hands_the_connector_only_the_public_ones() {
        // Pinned: the connector gets the checked list and nothing else, so
        // a private address in the answer is never tried.
        use reqwest::dns::Resolve;
        let addrs =
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST), "1.1.1.1".parse().expect("ip"), "fd00::1".parse().expect("ip")];
        let resolver = PublicOnlyResolver { lookup: lookup_to(addrs) };
        let name: reqwest::dns::Name = "push.example.net".parse().expect("a name");
        let got: Vec<SocketAddr> = resolver.resolve(name).await.expect("one public address").collect();
        assert_eq!(got, vec![SocketAddr::new("1.1.1.1".parse().expect("ip"), 0)]);
        let resolver = PublicOnlyResolver { lookup: lookup_to(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) };
        let name: reqwest::dns::Name = "push.example.net".parse().expect("a name");
        let Err(err) = resolver.resolve(name).await else { panic!("loopback only is refused") };
        assert!(err.to_string().contains("no public address"), "{err}");
    }

    #[test]
    fn public_addresses_are_told_from_private_ones() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(!is_public_address(ip.parse().expect(ip)), "{ip} should be refused");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "142.250.74.106",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2a00:1450:4001:80b::200a",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public_address(ip.parse().expect(ip)), "{ip} should be allowed");
        }
    }
}
