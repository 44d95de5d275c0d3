//! SEC-58 and SEC-59: every field of a registration and of an assertion,
//! tampered in turn, is refused. The key is `webauthn-authenticator-rs`'s
//! `SoftToken`, not ours; the checks are webauthn-rs's, as configured here.

#![allow(clippy::unwrap_used)]

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use url::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey};
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

use super::party::{Checked, RelyingParty, relying_party_for};
use super::{AttestationRule, KeyKind, as_security_key};
use crate::error::FactorError;
use crate::ids::AccountId;

fn rp() -> RelyingParty {
    relying_party_for("http://127.0.0.1:8080", None).unwrap()
}

fn origin() -> Url {
    Url::parse("http://localhost:8080").unwrap()
}

fn key() -> SoftToken {
    SoftToken::new(false).unwrap().0
}

/// A registration begun: the options the browser gets and our state.
fn begin(rp: &RelyingParty) -> (CreationChallengeResponse, String) {
    let (options, state) =
        rp.start_registration(&AccountId::from_stored("acct"), "a@example.com", KeyKind::SecurityKey, vec![]).unwrap();
    (serde_json::from_value(options).unwrap(), state)
}

fn finish(rp: &RelyingParty, state: &str, credential: &Value) -> bool {
    let Ok(response) = serde_json::from_value::<RegisterPublicKeyCredential>(credential.clone()) else {
        return false;
    };
    rp.finish_registration(KeyKind::SecurityKey, state, &response).is_ok()
}

/// `clientDataJSON` with one field replaced.
fn with_client_data(credential: &Value, field: &str, value: &str) -> Value {
    let mut credential = credential.clone();
    let raw = credential["response"]["clientDataJSON"].as_str().unwrap().to_owned();
    let mut data: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(raw.trim_end_matches('=').as_bytes()).unwrap()).unwrap();
    data[field] = value.into();
    credential["response"]["clientDataJSON"] = BASE64URL_NOPAD.encode(data.to_string().as_bytes()).into();
    credential
}

/// One byte of a binary response field flipped.
fn flipped(credential: &Value, field: &str, at: usize) -> Value {
    let mut credential = credential.clone();
    let raw = credential["response"][field].as_str().unwrap().to_owned();
    let mut bytes = BASE64URL_NOPAD.decode(raw.trim_end_matches('=').as_bytes()).unwrap();
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    credential["response"][field] = BASE64URL_NOPAD.encode(&bytes).into();
    credential
}

fn registered(rp: &RelyingParty, token: &mut SoftToken) -> SecurityKey {
    let (options, state) = begin(rp);
    let credential = serde_json::to_value(token.do_registration(origin(), options).unwrap()).unwrap();
    let response: RegisterPublicKeyCredential = serde_json::from_value(credential).unwrap();
    let new = rp.finish_registration(KeyKind::SecurityKey, &state, &response).unwrap();
    as_security_key(&new.json).unwrap()
}

#[test]
fn sec58_an_honest_registration_passes_and_each_tampered_field_is_refused() {
    let rp = rp();
    let mut token = key();
    let (options, state) = begin(&rp);
    let honest = serde_json::to_value(token.do_registration(origin(), options.clone()).unwrap()).unwrap();
    let tampered = [
        ("type", with_client_data(&honest, "type", "webauthn.get")),
        ("challenge", with_client_data(&honest, "challenge", &BASE64URL_NOPAD.encode(&[7u8; 32]))),
        ("origin", with_client_data(&honest, "origin", "https://phish.example.net")),
        // Deep in the CBOR: the authenticator data (rpIdHash, flags, key).
        ("attestation object", flipped(&honest, "attestationObject", 60)),
    ];
    for (what, credential) in tampered {
        assert!(!finish(&rp, &state, &credential), "tampered {what} was accepted");
    }
    // The key signed for another relying party: rpIdHash differs.
    let mut elsewhere = options.clone();
    elsewhere.public_key.rp.id = "example.com".into();
    let other_rp = key().perform_register(origin(), elsewhere.public_key, 60_000).unwrap();
    assert!(!finish(&rp, &state, &serde_json::to_value(other_rp).unwrap()), "another rpIdHash was accepted");
    // And the honest one passes, with its own state only.
    assert!(finish(&rp, &state, &honest));
    let (_, other_state) = begin(&rp);
    assert!(!finish(&rp, &other_state, &honest), "another ceremony's state accepted it");
}

fn begin_assertion(rp: &RelyingParty, keys: &[SecurityKey]) -> (RequestChallengeResponse, String) {
    let (options, state) = rp.start_authentication(keys).unwrap();
    (serde_json::from_value(options).unwrap(), state)
}

fn accepted(rp: &RelyingParty, state: &str, credential: &Value) -> bool {
    let Ok(response) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else { return false };
    matches!(rp.finish_authentication(state, &response), Ok(Checked::Good(_)))
}

#[test]
fn sec59_an_honest_assertion_passes_and_each_fault_is_refused() {
    let rp = rp();
    let mut token = key();
    let security_key = registered(&rp, &mut token);
    let (options, state) = begin_assertion(&rp, std::slice::from_ref(&security_key));
    let honest = serde_json::to_value(token.do_authentication(origin(), options.clone()).unwrap()).unwrap();
    let tampered = [
        ("type", with_client_data(&honest, "type", "webauthn.create")),
        ("challenge", with_client_data(&honest, "challenge", &BASE64URL_NOPAD.encode(&[7u8; 32]))),
        ("origin", with_client_data(&honest, "origin", "https://phish.example.net")),
        ("rpIdHash", flipped(&honest, "authenticatorData", 0)),
        ("flags", flipped(&honest, "authenticatorData", 32)),
        ("signature", flipped(&honest, "signature", 20)),
    ];
    for (what, credential) in tampered {
        assert!(!accepted(&rp, &state, &credential), "tampered {what} was accepted");
    }
    assert!(accepted(&rp, &state, &honest));

    // A credential the state does not list (another account's key) is refused.
    let mut stranger = key();
    let strangers_key = registered(&rp, &mut stranger);
    let (theirs, _) = begin_assertion(&rp, &[strangers_key]);
    let (mut mine, state) = begin_assertion(&rp, std::slice::from_ref(&security_key));
    mine.public_key.allow_credentials = theirs.public_key.allow_credentials;
    let foreign = serde_json::to_value(stranger.do_authentication(origin(), mine).unwrap()).unwrap();
    assert!(!accepted(&rp, &state, &foreign), "another account's key was accepted");
}

/// webauthn-rs refuses a count that did not go up; we get the verdict
/// `Regressed` with every other check done, for the operator's rule.
#[test]
fn sec59_a_sign_count_that_goes_backwards_is_flagged_after_every_other_check() {
    let rp = rp();
    let mut token = key();
    let mut security_key = registered(&rp, &mut token);
    let mut clone = SoftToken::from_cbor(&token.to_cbor().unwrap()).unwrap();
    let (options, state) = begin_assertion(&rp, std::slice::from_ref(&security_key));
    let first = token.do_authentication(origin(), options).unwrap();
    let Ok(Checked::Good(result)) = rp.finish_authentication(&state, &first) else { panic!("refused") };
    security_key.update_credential(&result);
    let (options, state) = begin_assertion(&rp, std::slice::from_ref(&security_key));
    let cloned = serde_json::to_value(clone.do_authentication(origin(), options).unwrap()).unwrap();
    let response: PublicKeyCredential = serde_json::from_value(cloned.clone()).unwrap();
    let Ok(Checked::Regressed(result)) = rp.finish_authentication(&state, &response) else { panic!("not flagged") };
    assert_eq!(result.counter(), 1);
    // A forged copy is refused outright: the count is the last check.
    for (what, forged) in [
        ("signature", flipped(&cloned, "signature", 20)),
        ("origin", with_client_data(&cloned, "origin", "https://phish.example.net")),
        ("challenge", with_client_data(&cloned, "challenge", &BASE64URL_NOPAD.encode(&[7u8; 32]))),
    ] {
        let response: PublicKeyCredential = serde_json::from_value(forged).unwrap();
        assert!(matches!(rp.finish_authentication(&state, &response), Ok(Checked::Refused(_))), "forged {what}");
    }
}

fn soft_token_ca_rule(aaguid: &str) -> (SoftToken, AttestationRule) {
    use crypto_glue::traits::{EncodePem, LineEndingPem};
    let (token, ca) = SoftToken::new(true).unwrap();
    let pem = ca.to_pem(LineEndingPem::LF).unwrap();
    (token, AttestationRule::new(&[aaguid.to_owned()], &[("ca.pem".to_owned(), pem)]).unwrap())
}

fn register_as(rp: &RelyingParty, kind: KeyKind, token: &mut SoftToken) -> Result<(), FactorError> {
    let (options, state) =
        rp.start_registration(&AccountId::from_stored("acct"), "a@example.com", kind, vec![]).unwrap();
    let mut options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    // SoftToken keeps no resident keys; what it is asked does not change the checks.
    if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
    }
    let response = token.do_registration(origin(), options).unwrap();
    rp.finish_registration(kind, &state, &response).map(|_| ())
}

/// SEC-58, the operator's attestation rule, for both kinds of key.
#[test]
fn sec58_an_attestation_rule_takes_listed_models_of_trusted_makers_only() {
    const SOFT_TOKEN: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";
    let (mut listed, rule) = soft_token_ca_rule(SOFT_TOKEN);
    let strict = rp().demanding(Some(&rule));
    for kind in [KeyKind::SecurityKey, KeyKind::Passkey] {
        assert!(register_as(&strict, kind, &mut listed).is_ok(), "{kind:?}");
        let mut stranger = SoftToken::new(true).unwrap().0;
        assert!(matches!(register_as(&strict, kind, &mut stranger), Err(FactorError::AttestationRefused)), "{kind:?}");
    }
    let (mut other_model, rule) = soft_token_ca_rule("cb69481e-8ff7-4039-93ec-0a2729a154a8");
    let strict = rp().demanding(Some(&rule));
    assert!(matches!(
        register_as(&strict, KeyKind::SecurityKey, &mut other_model),
        Err(FactorError::AttestationRefused)
    ));
    // Without a rule, the same keys register (attestation `none` accepted).
    assert!(register_as(&rp(), KeyKind::SecurityKey, &mut other_model).is_ok());
}

/// A registration begun before the rule came in cannot finish under it.
#[test]
fn sec58_a_ceremony_begun_without_the_rule_does_not_finish_under_it() {
    const SOFT_TOKEN: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";
    let (mut listed, rule) = soft_token_ca_rule(SOFT_TOKEN);
    let (options, state) = begin(&rp());
    let response = listed.do_registration(origin(), options).unwrap();
    let strict = rp().demanding(Some(&rule));
    assert!(matches!(
        strict.finish_registration(KeyKind::SecurityKey, &state, &response),
        Err(FactorError::AttestationRefused)
    ));
}
