//! The relying party: who we are to a key (the rp id) and which pages may
//! ask it to sign (the origins), from the public URL.
//!
//! An IP address cannot be a relying-party id, so a loopback public URL
//! (`http://127.0.0.1:8080`, what a local run has) becomes
//! `http://localhost:8080`: keys work there when the browser opens the
//! `localhost` address. A parent domain (`example.com` for
//! `https://login.example.com`) is the operator's `webauthn_rp_id`.

use std::time::Duration;

use url::Url;
use webauthn_rs::prelude::{
    AttestationCaList, AttestedPasskeyRegistration, AuthenticationResult, CredentialID, DiscoverableAuthentication,
    Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
    SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::{AttestationRule, CEREMONY_SECS, KeyKind, NewKey};
use crate::error::{FactorError, InternalError};
use crate::ids::AccountId;

/// webauthn-rs's relying party, as configured for this server.
pub struct RelyingParty {
    webauthn: Webauthn,
    /// The operator's attestation CAs, when registration demands them.
    attestation: Option<AttestationCaList>,
}

/// What an assertion's checks found (SEC-59).
#[derive(Debug)]
pub(super) enum Checked {
    Good(AuthenticationResult),
    /// Every check passed but the sign count, which did not go up: two
    /// copies of the key may exist. Whether to accept is the caller's rule.
    Regressed(AuthenticationResult),
    Refused(WebauthnError),
}

/// The origin keys are used from for a loopback public URL
/// (`http://127.0.0.1:8080` → `http://localhost:8080`); `None` for any other.
/// The one place this name is derived: the relying party, the pages' own
/// origin check and the URL `serve` prints all take it from here.
pub fn localhost_origin(public_url: &str) -> Option<String> {
    let mut url = Url::parse(public_url).ok()?;
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(_) => false,
    };
    (loopback && url.set_host(Some("localhost")).is_ok()).then(|| url.origin().ascii_serialization())
}

/// Builds the relying party for `public_url`, its id `rp_id` when given.
pub fn relying_party_for(public_url: &str, rp_id: Option<&str>) -> Result<RelyingParty, String> {
    let local = localhost_origin(public_url);
    let loopback = local.is_some();
    let origin = Url::parse(local.as_deref().unwrap_or(public_url)).map_err(|e| format!("public_url: {e}"))?;
    let host = origin.domain().ok_or("public_url must name a host, not an IP address, for security keys")?.to_owned();
    let id = rp_id.unwrap_or(&host);
    let webauthn = WebauthnBuilder::new(id, &origin)
        .and_then(|b| {
            // On loopback, instances of one server differ only by port; a
            // ceremony begun on one may finish on another.
            b.rp_name("twostep")
                .allow_any_port(loopback)
                .timeout(Duration::from_secs(CEREMONY_SECS.unsigned_abs()))
                .build()
        })
        .map_err(|e| format!("rp id {id:?} for origin {origin}: {e}"))?;
    Ok(RelyingParty { webauthn, attestation: None })
}

fn internal(e: impl std::fmt::Display) -> FactorError {
    FactorError::Internal(InternalError(e.to_string()))
}

/// The user handle keys keep: derived from the account id so the same
/// account always has the same one, and the id itself is not given out.
pub(super) fn user_handle(account: &AccountId) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("twostep webauthn user handle\0{account}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

impl RelyingParty {
    /// The same party, registering only keys that `rule` accepts.
    pub(super) fn demanding(mut self, rule: Option<&AttestationRule>) -> Self {
        self.attestation = rule.map(AttestationRule::ca_list);
        self
    }

    /// Options for `navigator.credentials.create()` and the ceremony state, as JSON.
    pub(super) fn start_registration(
        &self,
        account: &AccountId,
        email: &str,
        kind: KeyKind,
        exclude: Vec<CredentialID>,
    ) -> Result<(serde_json::Value, String), FactorError> {
        let handle = user_handle(account);
        let exclude = Some(exclude).filter(|e| !e.is_empty());
        match kind {
            KeyKind::SecurityKey => {
                let (o, s) = self
                    .webauthn
                    .start_securitykey_registration(handle, email, email, exclude, self.attestation.clone(), None)
                    .map_err(internal)?;
                let mut o = serde_json::to_value(&o).map_err(internal)?;
                without_cred_protect(&mut o);
                Ok((o, serde_json::to_string(&s).map_err(internal)?))
            }
            KeyKind::Passkey => {
                let (o, s) = if let Some(cas) = &self.attestation {
                    let (o, s) = self
                        .webauthn
                        .start_attested_passkey_registration(handle, email, email, exclude, cas.clone(), None)
                        .map_err(internal)?;
                    (o, serde_json::to_string(&s).map_err(internal)?)
                } else {
                    let (o, s) =
                        self.webauthn.start_passkey_registration(handle, email, email, exclude).map_err(internal)?;
                    (o, serde_json::to_string(&s).map_err(internal)?)
                };
                let mut o = serde_json::to_value(&o).map_err(internal)?;
                require_resident_key(&mut o);
                Ok((o, s))
            }
        }
    }

    /// Checks the browser's answer against the state (SEC-58).
    pub(super) fn finish_registration(
        &self,
        kind: KeyKind,
        state: &str,
        response: &RegisterPublicKeyCredential,
    ) -> Result<NewKey, FactorError> {
        let attested = carries_attestation_cas(state)?;
        // The rule came in while this ceremony was under way (a restart, or
        // another instance already on the new configuration): it was begun
        // without the CAs, so it cannot meet it.
        if self.attestation.is_some() && !attested {
            tracing::info!("registration refused: begun before attestation was demanded");
            return Err(FactorError::AttestationRefused);
        }
        let refuse = |e: WebauthnError| {
            if attested && attestation_fault(&e) {
                tracing::info!(reason = %e, "security key registration refused by the attestation rule");
                FactorError::AttestationRefused
            } else {
                refused(e)
            }
        };
        match kind {
            KeyKind::SecurityKey => {
                let state: SecurityKeyRegistration = serde_json::from_str(state).map_err(internal)?;
                let key = self.webauthn.finish_securitykey_registration(response, &state).map_err(refuse)?;
                NewKey::of(key.cred_id().as_ref(), &key)
            }
            KeyKind::Passkey => {
                // A passkey not kept on the key cannot be found without a
                // user name: useless for password-less sign-in.
                if response.extensions.cred_props.as_ref().and_then(|p| p.rk) == Some(false) {
                    tracing::info!("passkey registration refused: not discoverable (credProps.rk false)");
                    return Err(FactorError::InvalidCredential);
                }
                if attested {
                    let state: AttestedPasskeyRegistration = serde_json::from_str(state).map_err(internal)?;
                    let key = self.webauthn.finish_attested_passkey_registration(response, &state).map_err(refuse)?;
                    return NewKey::of(key.cred_id().as_ref(), &key);
                }
                let state: PasskeyRegistration = serde_json::from_str(state).map_err(internal)?;
                let key = self.webauthn.finish_passkey_registration(response, &state).map_err(refuse)?;
                NewKey::of(key.cred_id().as_ref(), &key)
            }
        }
    }

    /// Options for `navigator.credentials.get()` offering every key given,
    /// and the ceremony state, as JSON.
    pub(super) fn start_authentication(
        &self,
        keys: &[SecurityKey],
    ) -> Result<(serde_json::Value, String), FactorError> {
        let (options, state): (RequestChallengeResponse, SecurityKeyAuthentication) =
            self.webauthn.start_securitykey_authentication(keys).map_err(internal)?;
        Ok((serde_json::to_value(&options).map_err(internal)?, serde_json::to_string(&state).map_err(internal)?))
    }

    /// Checks an assertion against the state (SEC-59).
    pub(super) fn finish_authentication(
        &self,
        state: &str,
        response: &PublicKeyCredential,
    ) -> Result<Checked, FactorError> {
        let parsed: SecurityKeyAuthentication = serde_json::from_str(state).map_err(internal)?;
        Ok(match self.webauthn.finish_securitykey_authentication(response, &parsed) {
            Ok(r) => Checked::Good(r),
            Err(WebauthnError::CredentialPossibleCompromise) => {
                // The same checks again with the stored counts at zero,
                // which webauthn-rs skips: it has no switch to accept a
                // regression itself, and we need its result to go on.
                let mut relaxed: serde_json::Value = serde_json::from_str(state).map_err(internal)?;
                if let Some(creds) = relaxed["ast"]["credentials"].as_array_mut() {
                    creds.iter_mut().for_each(zero_counter);
                }
                let relaxed: SecurityKeyAuthentication = serde_json::from_value(relaxed).map_err(internal)?;
                match self.webauthn.finish_securitykey_authentication(response, &relaxed) {
                    Ok(r) => Checked::Regressed(r),
                    Err(e) => Checked::Refused(e),
                }
            }
            Err(e) => Checked::Refused(e),
        })
    }
}

impl RelyingParty {
    /// Options for a passkey sign-in (no account named: the key picks), and the state.
    pub(super) fn start_discoverable(&self) -> Result<(serde_json::Value, String), FactorError> {
        let (options, state) = self.webauthn.start_discoverable_authentication().map_err(internal)?;
        Ok((serde_json::to_value(&options).map_err(internal)?, serde_json::to_string(&state).map_err(internal)?))
    }

    /// Whose key answered, as it says: (user handle, credential id). Not
    /// yet checked: `finish_discoverable` proves it.
    pub(super) fn identify<'a>(&self, response: &'a PublicKeyCredential) -> Option<(Uuid, &'a [u8])> {
        self.webauthn.identify_discoverable_authentication(response).ok()
    }

    /// Checks a passkey's assertion against the state and its stored key
    /// (SEC-59, with user verification required).
    pub(super) fn finish_discoverable(
        &self,
        state: &str,
        response: &PublicKeyCredential,
        key: &Passkey,
    ) -> Result<Checked, FactorError> {
        let parsed: DiscoverableAuthentication = serde_json::from_str(state).map_err(internal)?;
        Ok(match self.webauthn.finish_discoverable_authentication_v2(response, parsed, key) {
            Ok(r) => Checked::Good(r),
            Err(WebauthnError::CredentialPossibleCompromise) => {
                // As in `finish_authentication`: every other check again,
                // against the key with its stored count at zero.
                let mut relaxed = serde_json::to_value(key).map_err(internal)?;
                zero_counter(&mut relaxed["cred"]);
                let relaxed: Passkey = serde_json::from_value(relaxed).map_err(internal)?;
                let parsed: DiscoverableAuthentication = serde_json::from_str(state).map_err(internal)?;
                match self.webauthn.finish_discoverable_authentication_v2(response, parsed, &relaxed) {
                    Ok(r) => Checked::Regressed(r),
                    Err(e) => Checked::Refused(e),
                }
            }
            Err(e) => Checked::Refused(e),
        })
    }
}

/// A stored credential (webauthn-rs's JSON) with its sign count at zero.
/// webauthn-rs compares counts only when one side is non-zero and the
/// count is its very last check, so every other check stands.
fn zero_counter(credential: &mut serde_json::Value) {
    if let Some(c) = credential.as_object_mut().and_then(|c| c.get_mut("counter")) {
        *c = 0.into();
    }
}

/// Whether a registration's state holds attestation CAs: webauthn-rs keeps
/// them in `ca_list` (null for a security key registered without).
fn carries_attestation_cas(state: &str) -> Result<bool, FactorError> {
    let value: serde_json::Value = serde_json::from_str(state).map_err(internal)?;
    Ok(value.get("ca_list").is_some_and(|l| !l.is_null()))
}

/// The refusals that mean "not an accepted model": no attestation, an
/// unknown CA, an unlisted AAGUID, or a synced (unattestable) passkey.
fn attestation_fault(e: &WebauthnError) -> bool {
    matches!(
        e,
        WebauthnError::AttestationNotSupported
            | WebauthnError::AttestationNotVerifiable
            | WebauthnError::AttestationUntrustedAaguid
            | WebauthnError::AttestationFormatMissingAaguid
            | WebauthnError::AttestationChainNotTrusted(_)
            | WebauthnError::AttestationTrustFailure
            | WebauthnError::AttestationLeafCertMissing
            | WebauthnError::AttestationCertificateTrustStoreEmpty
            | WebauthnError::CredentialMayNotBeHardwareBound
    )
}

/// A passkey for password-less sign-in must be found without a user name,
/// so it must live on the key (webauthn-rs's plain passkey registration
/// only prefers that).
/// webauthn-rs asks a security key to protect its credential behind user
/// verification (credProtect level 3) without enforcing it; browsers refuse
/// that for a credential that is not discoverable ("inconsistent protection
/// policy", Chromium), so a plain key could not be added at all. A second
/// factor needs no such protection: the password is the other factor.
fn without_cred_protect(options: &mut serde_json::Value) {
    if let Some(ext) = options["publicKey"]["extensions"].as_object_mut() {
        ext.remove("credentialProtectionPolicy");
        ext.remove("enforceCredentialProtectionPolicy");
    }
}

fn require_resident_key(options: &mut serde_json::Value) {
    if let Some(sel) = options["publicKey"]["authenticatorSelection"].as_object_mut() {
        sel.insert("requireResidentKey".into(), true.into());
        sel.insert("residentKey".into(), "required".into());
    }
}

/// A refused ceremony. The reason goes to the log (it names the failed
/// check, never key material), the client hears only that it was refused.
#[expect(clippy::needless_pass_by_value, reason = "shaped for .map_err")]
fn refused(e: WebauthnError) -> FactorError {
    tracing::info!(reason = %e, "webauthn ceremony refused");
    FactorError::InvalidCredential
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_public_url_is_used_as_localhost_on_its_own_port() {
        assert_eq!(localhost_origin("http://127.0.0.1:8080").as_deref(), Some("http://localhost:8080"));
        assert_eq!(localhost_origin("http://[::1]:8080").as_deref(), Some("http://localhost:8080"));
        assert_eq!(localhost_origin("http://127.0.0.1:8080/").as_deref(), Some("http://localhost:8080"));
        assert_eq!(localhost_origin("https://login.example.com"), None);
        assert_eq!(localhost_origin("http://192.0.2.1:8080"), None);
        assert_eq!(localhost_origin("not a url"), None);
    }

    #[test]
    fn loopback_public_urls_become_localhost_and_ips_are_refused() {
        assert!(relying_party_for("http://127.0.0.1:8080", None).is_ok());
        assert!(relying_party_for("http://[::1]:8080", None).is_ok());
        assert!(relying_party_for("https://10.0.0.1", None).is_err());
        assert!(relying_party_for("https://login.example.com", Some("example.com")).is_ok());
        // An rp id must be the origin's host or a parent of it.
        assert!(relying_party_for("https://login.example.com", Some("other.com")).is_err());
    }

    #[test]
    fn the_user_handle_is_stable_and_not_the_account_id() {
        let a = AccountId::from_stored("acct-1");
        assert_eq!(user_handle(&a), user_handle(&a));
        assert_ne!(user_handle(&a), user_handle(&AccountId::from_stored("acct-2")));
    }
}
