//! The provider's rules over an in-memory store: exact redirect URIs,
//! PKCE, codes spent once and bound to client, URI and verifier, refresh
//! rotation with family revocation, and what `acr`/`amr` say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::flow::{AuthParams, Decision, Refused};
use super::rules::*;
use super::store::*;
use super::tokens::TokenParams;
use super::*;
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::ports::OsRng;
use crate::time::Timestamp;

struct Manual(Mutex<i64>);

impl Clock for Manual {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(*self.0.lock().expect("lock"))
    }
}

#[derive(Default)]
struct Memory {
    clients: Mutex<HashMap<String, ClientRecord>>,
    grants: Mutex<HashMap<String, GrantRecord>>,
    codes: Mutex<HashMap<String, CodeRecord>>,
    tokens: Mutex<HashMap<String, TokenRecord>>,
    subjects: Mutex<HashMap<String, String>>,
    consents: Mutex<HashMap<(String, String), String>>,
    keys: Mutex<Vec<SigningKeyRecord>>,
}

fn l<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("lock")
}

#[async_trait]
impl OidcStore for Memory {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let mut m = l(&self.clients);
        if m.contains_key(&c.id) {
            return Err(StoreError::Conflict);
        }
        m.insert(c.id.clone(), c.clone());
        Ok(())
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(l(&self.clients).get(id).cloned())
    }
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        Ok(l(&self.clients).values().cloned().collect())
    }
    async fn update_client(&self, c: &ClientRecord) -> Result<bool, StoreError> {
        Ok(l(&self.clients).insert(c.id.clone(), c.clone()).is_some())
    }
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        Ok(l(&self.clients).remove(id).is_some())
    }
    async fn insert_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        l(&self.keys).insert(0, k.clone());
        Ok(())
    }
    async fn keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        Ok(l(&self.keys).clone())
    }
    async fn retire_keys(&self, at: Timestamp) -> Result<u64, StoreError> {
        let mut n = 0;
        for k in l(&self.keys).iter_mut().filter(|k| k.retired_at.is_none()) {
            k.retired_at = Some(at);
            n += 1;
        }
        Ok(n)
    }
    async fn subject(&self, account: &AccountId, candidate: &str) -> Result<String, StoreError> {
        Ok(l(&self.subjects).entry(account.as_str().to_owned()).or_insert_with(|| candidate.to_owned()).clone())
    }
    async fn account_of_subject(&self, sub: &str) -> Result<Option<AccountId>, StoreError> {
        Ok(l(&self.subjects).iter().find(|(_, s)| *s == sub).map(|(a, _)| AccountId::from_stored(a.clone())))
    }
    async fn consent(&self, account: &AccountId, client: &str) -> Result<Option<String>, StoreError> {
        Ok(l(&self.consents).get(&(account.as_str().to_owned(), client.to_owned())).cloned())
    }
    async fn save_consent(
        &self,
        account: &AccountId,
        client: &str,
        scope: &str,
        _: Timestamp,
    ) -> Result<(), StoreError> {
        l(&self.consents).insert((account.as_str().to_owned(), client.to_owned()), scope.to_owned());
        Ok(())
    }
    async fn insert_grant_with_code(&self, g: &GrantRecord, c: &CodeRecord) -> Result<(), StoreError> {
        l(&self.grants).insert(g.id.clone(), g.clone());
        l(&self.codes).insert(c.hash.clone(), c.clone());
        Ok(())
    }
    async fn code(&self, hash: &str) -> Result<Option<CodeRecord>, StoreError> {
        Ok(l(&self.codes).get(hash).cloned())
    }
    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        Ok(l(&self.grants).get(id).cloned())
    }
    async fn revoke_grant(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        l(&self.tokens).retain(|_, t| t.grant_id != id);
        let mut grants = l(&self.grants);
        match grants.get_mut(id) {
            Some(g) if g.revoked_at.is_none() => {
                g.revoked_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn issue_tokens(
        &self,
        grant_id: &str,
        spend: Spend<'_>,
        now: Timestamp,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        let took = match spend {
            Spend::Code(h) => match l(&self.codes).get_mut(h) {
                Some(c) if c.consumed_at.is_none() && c.expires_at > now => {
                    c.consumed_at = Some(now);
                    true
                }
                _ => false,
            },
            Spend::Refresh(h) => match l(&self.tokens).get_mut(h) {
                Some(t) if t.kind == TokenKind::Refresh && t.used_at.is_none() && t.expires_at > now => {
                    t.used_at = Some(now);
                    true
                }
                _ => false,
            },
        };
        if !took || l(&self.grants).get(grant_id).is_none_or(|g| !g.is_live()) {
            return Ok(false);
        }
        let mut m = l(&self.tokens);
        for t in tokens {
            m.insert(t.hash.clone(), t.clone());
        }
        Ok(true)
    }
    async fn live_token(&self, hash: &str, now: Timestamp) -> Result<Option<LiveToken>, StoreError> {
        let Some(t) = l(&self.tokens).get(hash).cloned().filter(|t| t.expires_at > now) else { return Ok(None) };
        let g = l(&self.grants).get(&t.grant_id).cloned().filter(GrantRecord::is_live);
        Ok(g.map(|grant| LiveToken { token: t, grant }))
    }
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(l(&self.tokens).get(hash).cloned())
    }
    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(l(&self.tokens).remove(hash).is_some())
    }
    async fn apps_of(&self, account: &AccountId, _: Timestamp) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let consents = l(&self.consents);
        Ok(consents
            .keys()
            .filter(|(a, _)| a == account.as_str())
            .map(|(_, c)| (c.clone(), Timestamp::from_secs(T0)))
            .collect())
    }
    async fn forget_app(&self, account: &AccountId, client: &str, _: Timestamp) -> Result<u64, StoreError> {
        l(&self.consents).remove(&(account.as_str().to_owned(), client.to_owned()));
        Ok(0)
    }
    async fn sweep(&self, _: Timestamp) -> Result<u64, StoreError> {
        Ok(0)
    }
}

const T0: i64 = 1_800_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Fixture {
    oidc: Oidc,
    store: Arc<Memory>,
    clock: Arc<Manual>,
}

fn fixture() -> Fixture {
    let store = Arc::new(Memory::default());
    let clock = Arc::new(Manual(Mutex::new(T0)));
    let oidc = Oidc::new(Arc::clone(&store) as _, Arc::clone(&clock) as _, Arc::new(OsRng), "https://id.example/");
    Fixture { oidc, store, clock }
}

async fn client(f: &Fixture, tweak: impl FnOnce(&mut clients::NewClient)) -> ClientRecord {
    let mut new = clients::NewClient {
        name: "Wiki".into(),
        redirect_uris: vec!["https://wiki.example/cb".into()],
        ..Default::default()
    };
    tweak(&mut new);
    f.oidc.add_client(new).await.expect("client").client
}

fn params(c: &ClientRecord) -> AuthParams {
    AuthParams {
        response_type: Some("code".into()),
        client_id: Some(c.id.clone()),
        redirect_uri: Some(c.redirect_uris[0].clone()),
        scope: Some("openid email offline_access".into()),
        state: Some("st".into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        ..Default::default()
    }
}

fn facts(second: Option<&str>) -> facts::SessionFacts {
    facts::SessionFacts {
        account_id: AccountId::from_stored("acct-1"),
        session_id: "session-1".into(),
        enrolling: false,
        auth_time: Timestamp::from_secs(T0 - 10),
        password: true,
        second_factor: second.map(str::to_owned),
        orgs: vec![("org-1".into(), "Acme".into())],
        policy_requires_two_factor: false,
        has_two_factor: true,
    }
}

#[test]
fn redirect_uris_are_https_or_loopback_and_match_exactly() {
    assert!(check_redirect_uri("https://app.example/cb").is_ok());
    assert!(check_redirect_uri("http://127.0.0.1:8080/cb").is_ok());
    assert!(check_redirect_uri("http://[::1]/cb").is_ok());
    assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
    assert!(matches!(check_redirect_uri("http://app.example/cb"), Err(UriError::NotHttps(_))));
    assert!(matches!(check_redirect_uri("https://*.example/cb"), Err(UriError::Pattern(_))));
    assert!(matches!(check_redirect_uri("https://app.example/cb#x"), Err(UriError::Pattern(_))));
    assert!(matches!(check_redirect_uri("/cb"), Err(UriError::NotAbsolute(_))));
    let registered = vec!["https://app.example/cb".to_owned()];
    assert!(redirect_matches(&registered, "https://app.example/cb"));
    for near in
        ["https://app.example/cb/", "https://app.example/cb?x=1", "https://APP.example/cb", "https://app.example/c"]
    {
        assert!(!redirect_matches(&registered, near), "{near}");
    }
}

#[test]
fn pkce_is_s256_with_a_well_formed_verifier() {
    assert!(challenge_well_formed(CHALLENGE));
    assert!(verifier_matches(VERIFIER, CHALLENGE));
    assert!(!verifier_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", CHALLENGE));
    // The plain method would send the verifier as the challenge.
    assert!(!verifier_matches(CHALLENGE, CHALLENGE));
    assert!(!verifier_matches("short", CHALLENGE));
    assert!(!challenge_well_formed("plain-challenge"));
}

#[test]
fn amr_says_how_and_acr_how_many() {
    assert_eq!(amr(true, None), vec!["pwd"]);
    assert_eq!(amr(true, Some("totp")), vec!["pwd", "otp", "mfa"]);
    assert_eq!(amr(true, Some("voice")), vec!["pwd", "tel", "mfa"]);
    assert_eq!(amr(true, Some("push")), vec!["pwd", "pop", "mfa"]);
    assert_eq!(amr(true, Some("sms")), vec!["pwd", "sms", "mfa"]);
    assert_eq!(amr(true, Some("webauthn")), vec!["pwd", "hwk", "mfa"]);
    assert_eq!(amr(true, Some("recovery_code")), vec!["pwd", "otp", "mfa"]);
    assert_eq!(amr(false, Some(PASSKEY)), vec!["hwk", "user", "mfa"]);
    assert_eq!(acr(false), ACR_1FA);
    assert_eq!(acr(true), ACR_2FA);
    assert!(wants_two_factor(Some("urn:twostep:2fa")));
    assert!(!wants_two_factor(Some("urn:twostep:1fa")));
}

#[test]
fn secrets_compare_by_hash() {
    let h = sha256_hex("s3cret");
    assert!(secret_matches(&h, "s3cret"));
    assert!(!secret_matches(&h, "s3cre"));
}

#[tokio::test]
async fn unknown_client_or_uri_is_a_page_and_the_rest_redirect() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    let mut p = params(&c);
    p.redirect_uri = Some("https://evil.example/cb".into());
    assert!(matches!(f.oidc.check_request(&p).await, Err(Refused::Page(_))));
    let mut p = params(&c);
    p.client_id = Some("nobody".into());
    assert!(matches!(f.oidc.check_request(&p).await, Err(Refused::Page(_))));
    let mut p = params(&c);
    p.code_challenge = None;
    let Err(Refused::Redirect { error, state, .. }) = f.oidc.check_request(&p).await else { panic!("redirect") };
    assert_eq!((error.code(), state.as_deref()), ("invalid_request", Some("st")));
    let mut p = params(&c);
    p.code_challenge_method = Some("plain".into());
    assert!(matches!(f.oidc.check_request(&p).await, Err(Refused::Redirect { .. })));
    let mut p = params(&c);
    p.response_type = Some("token".into());
    let Err(Refused::Redirect { error, .. }) = f.oidc.check_request(&p).await else { panic!("redirect") };
    assert_eq!(error.code(), "unsupported_response_type");
}

#[tokio::test]
async fn decisions_come_in_order() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    let req = f.oidc.check_request(&params(&c)).await.expect("request");
    assert!(matches!(f.oidc.decide(&req, None, None), Decision::Login));
    let mut none = req.clone();
    none.prompt_none = true;
    assert!(matches!(f.oidc.decide(&none, None, None), Decision::Refuse(OidcError::LoginRequired)));
    assert!(matches!(f.oidc.decide(&req, Some(&facts(None)), None), Decision::Consent));
    assert!(matches!(f.oidc.decide(&none, Some(&facts(None)), None), Decision::Refuse(OidcError::ConsentRequired)));
    assert!(matches!(f.oidc.decide(&req, Some(&facts(None)), Some(&req.scope)), Decision::Issue));
    let mut aged = req.clone();
    aged.max_age = Some(5);
    assert!(matches!(f.oidc.decide(&aged, Some(&facts(None)), Some(&req.scope)), Decision::Login));

    let two = client(&f, |n| n.require_two_factor = true).await;
    let req2 = f.oidc.check_request(&params(&two)).await.expect("request");
    assert!(matches!(f.oidc.decide(&req2, Some(&facts(None)), Some(&req2.scope)), Decision::StepUp));
    assert!(matches!(f.oidc.decide(&req2, Some(&facts(Some("totp"))), Some(&req2.scope)), Decision::Issue));

    let other_org = client(&f, |n| n.org_id = Some("org-2".into())).await;
    let req3 = f.oidc.check_request(&params(&other_org)).await.expect("request");
    let d = f.oidc.decide(&req3, Some(&facts(Some("totp"))), Some(&req3.scope));
    assert!(matches!(d, Decision::Refuse(OidcError::AccessDenied(_))), "{d:?}");
}

/// A code as `issue_code` stores it, without the facade.
async fn stored_code(f: &Fixture, c: &ClientRecord, code: &str) -> String {
    let grant = GrantRecord {
        id: format!("grant-{code}"),
        client_id: c.id.clone(),
        account_id: AccountId::from_stored("acct-1"),
        scope: "openid offline_access".into(),
        nonce: None,
        auth_time: Timestamp::from_secs(T0),
        acr: ACR_2FA.into(),
        amr: "pwd otp mfa".into(),
        groups: String::new(),
        created_at: Timestamp::from_secs(T0),
        revoked_at: None,
        session_id: Some("session-1".into()),
    };
    let record = CodeRecord {
        hash: sha256_hex(code),
        grant_id: grant.id.clone(),
        client_id: c.id.clone(),
        redirect_uri: c.redirect_uris[0].clone(),
        code_challenge: CHALLENGE.into(),
        expires_at: Timestamp::from_secs(T0 + CODE_SECS),
        consumed_at: None,
    };
    f.store.insert_grant_with_code(&grant, &record).await.expect("insert");
    grant.id
}

fn exchange(c: &ClientRecord, code: &str, verifier: &str) -> TokenParams {
    TokenParams {
        grant_type: Some("authorization_code".into()),
        code: Some(code.into()),
        redirect_uri: Some(c.redirect_uris[0].clone()),
        code_verifier: Some(verifier.into()),
        ..Default::default()
    }
}

/// Redeems and spends a code as the token endpoint does: the tokens.
async fn trade(
    f: &Fixture,
    c: &ClientRecord,
    code: &str,
    verifier: &str,
) -> Result<(String, Option<String>), tokens::Spent> {
    let (grant, hash) = f.oidc.redeem_code(c, &exchange(c, code, verifier)).await?;
    f.oidc.store_tokens(c, &grant, &grant.scope, Spend::Code(&hash)).await
}

#[tokio::test]
async fn a_code_is_spent_once_and_a_replay_revokes_what_it_issued() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    let grant = stored_code(&f, &c, "code-1").await;
    let (access, refresh) = trade(&f, &c, "code-1", VERIFIER).await.expect("first");
    assert!(refresh.is_some());
    let at = Timestamp::from_secs(T0);
    assert!(f.store.live_token(&sha256_hex(&access), at).await.expect("read").is_some());
    let again = trade(&f, &c, "code-1", VERIFIER).await.expect_err("replay");
    assert_eq!(again.error.code(), "invalid_grant");
    assert_eq!(again.revoked.map(|(g, _)| g.id), Some(grant.clone()));
    assert!(f.store.live_token(&sha256_hex(&access), at).await.expect("read").is_none(), "revoked by the replay");
}

#[tokio::test]
async fn a_code_is_bound_to_client_uri_and_verifier_and_expires() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    let other = client(&f, |n| n.name = "Other".into()).await;
    stored_code(&f, &c, "a").await;
    let wrong = "x".repeat(43);
    assert_eq!(trade(&f, &c, "a", &wrong).await.expect_err("verifier").error.code(), "invalid_grant");
    let mut p = exchange(&c, "a", VERIFIER);
    p.redirect_uri = Some("https://wiki.example/other".into());
    assert_eq!(f.oidc.redeem_code(&c, &p).await.expect_err("uri").error.code(), "invalid_grant");
    assert_eq!(
        f.oidc.redeem_code(&other, &exchange(&c, "a", VERIFIER)).await.expect_err("client").error.code(),
        "invalid_grant"
    );
    // None of those spent it.
    assert!(trade(&f, &c, "a", VERIFIER).await.is_ok());
    stored_code(&f, &c, "d").await;
    *f.clock.0.lock().expect("lock") = T0 + CODE_SECS;
    let late = trade(&f, &c, "d", VERIFIER).await.expect_err("expired");
    assert_eq!(late.error.code(), "invalid_grant");
    assert!(late.revoked.is_none());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    stored_code(&f, &c, "r").await;
    let (_, first) = trade(&f, &c, "r", VERIFIER).await.expect("tokens");
    let first = first.expect("refresh");
    let p = |t: &str| TokenParams {
        grant_type: Some("refresh_token".into()),
        refresh_token: Some(t.into()),
        ..Default::default()
    };
    let (grant, scope, hash) = f.oidc.redeem_refresh(&c, &p(&first)).await.expect("first use");
    assert_eq!(scope, "openid offline_access");
    let (_, second) = f.oidc.store_tokens(&c, &grant, &scope, Spend::Refresh(&hash)).await.expect("rotated");
    let second = second.expect("a new refresh token");
    let reuse = f.oidc.redeem_refresh(&c, &p(&first)).await.expect_err("reuse");
    assert_eq!(reuse.error.code(), "invalid_grant");
    assert!(reuse.revoked.is_some());
    // The family is gone: the newer token too.
    assert_eq!(f.oidc.redeem_refresh(&c, &p(&second)).await.expect_err("family").error.code(), "invalid_grant");
}

/// Signing out, revoking the session or a reset deletes the session, and
/// the store unlinks the grant (`ON DELETE SET NULL`): its refresh and
/// access tokens end with it, and the grant is revoked for good.
#[tokio::test]
async fn tokens_end_with_the_session_they_came_from() {
    let f = fixture();
    let c = client(&f, |_| {}).await;
    let grant = stored_code(&f, &c, "s").await;
    let (access, refresh) = trade(&f, &c, "s", VERIFIER).await.expect("tokens");
    let refresh = refresh.expect("refresh");
    let at = Timestamp::from_secs(T0);
    assert!(f.store.live_token(&sha256_hex(&access), at).await.expect("read").is_some());
    // What deleting the session does to the row.
    l(&f.store.grants).get_mut(&grant).expect("grant").session_id = None;
    assert!(f.store.live_token(&sha256_hex(&access), at).await.expect("read").is_none(), "access token ended");
    let p =
        TokenParams { grant_type: Some("refresh_token".into()), refresh_token: Some(refresh), ..Default::default() };
    let ended = f.oidc.redeem_refresh(&c, &p).await.expect_err("session ended");
    assert_eq!(ended.error.code(), "invalid_grant");
    assert_eq!(ended.revoked.map(|(g, _)| g.id), Some(grant.clone()), "revoked, to be audited");
    assert!(l(&f.store.grants)[&grant].revoked_at.is_some());
}

#[tokio::test]
async fn client_secrets_are_shown_once_and_stored_hashed() {
    let f = fixture();
    let r = f
        .oidc
        .add_client(clients::NewClient {
            name: "A".into(),
            redirect_uris: vec!["https://a.example/cb".into()],
            ..Default::default()
        })
        .await
        .expect("add");
    let secret = r.secret.expect("secret");
    assert_eq!(data_encoding::BASE64URL_NOPAD.decode(secret.as_bytes()).expect("b64").len(), 32);
    assert_eq!(r.client.secret_hash.as_deref(), Some(sha256_hex(&secret).as_str()));
    let auth = |s: &str| tokens::ClientAuth { client_id: r.client.id.clone(), secret: Some(s.into()) };
    assert!(f.oidc.authenticate_client(&auth(&secret)).await.is_ok());
    assert!(matches!(f.oidc.authenticate_client(&auth("wrong")).await, Err(OidcError::InvalidClient)));
    let public = f
        .oidc
        .add_client(clients::NewClient {
            name: "B".into(),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            public: true,
            ..Default::default()
        })
        .await
        .expect("add");
    assert!(public.secret.is_none());
    let bad = f
        .oidc
        .add_client(clients::NewClient {
            name: "C".into(),
            redirect_uris: vec!["http://c.example/cb".into()],
            ..Default::default()
        })
        .await;
    assert!(matches!(bad, Err(clients::ClientError::Uri(_))));
}

#[tokio::test]
async fn keys_are_thumbprinted_and_old_ones_stay_published() {
    let f = fixture();
    let ring = crate::crypto::Keyring::new(&crate::crypto::MasterKey::from_bytes([7; 32]));
    let jwks = f.oidc.jwks(&ring).await.expect("jwks");
    let first = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let new = f.oidc.rotate_keys(&ring).await.expect("rotate");
    assert_ne!(new[0], first);
    let kids: Vec<String> = f.oidc.jwks(&ring).await.expect("jwks")["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(kids.contains(&first) && kids.contains(&new[0]));
    *f.clock.0.lock().expect("lock") = T0 + ID_TOKEN_SECS + 1;
    let later = f.oidc.jwks(&ring).await.expect("jwks");
    assert_eq!(later["keys"].as_array().map(Vec::len), Some(1));
}
