//! The RFC 8291/8292 examples, the push service's answers, and address pinning.

use twostep_testkit::{FakeClock, Receiver, closed_port};

use super::*;

// RFC 8291 §5 and Appendix A.
const RFC_PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
const RFC_UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const RFC_AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
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
    let ours = vapid_jwt(&VapidKey::generate(), "https://push.example.net", 1_453_523_768, "mailto:push@example.com");
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
    assert_eq!(jwt, vapid_jwt(&key, "https://fcm.googleapis.com", NOW + JWT_LIFETIME_SECS, "mailto:ops@example.org"));
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
        assert!(matches!(&err, WebPushError::Permanent(t) if t.contains("not a public address")), "{host}: {err:?}");
    }
    assert!(service.requests().is_empty(), "nothing reached the push service");

    // Only the operator's switch lets loopback through: then the 410
    // arrives and is `Gone`.
    let sender = public_sender().allow_private_endpoints().expect("client").with_clock(Arc::new(FakeClock::at(NOW)));
    let (sub, _, _) = subscriber(format!("{origin}/push/secret-path"));
    assert!(matches!(sender.send(&sub, PAYLOAD, 60).await, Err(WebPushError::Gone)));
}

#[tokio::test]
async fn a_name_with_public_and_private_addresses_hands_the_connector_only_the_public_ones() {
    // Pinned: the connector gets the checked list and nothing else, so
    // a private address in the answer is never tried.
    use reqwest::dns::Resolve;
    let addrs = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), "1.1.1.1".parse().expect("ip"), "fd00::1".parse().expect("ip")];
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
