//! The operator's attestation rule (SEC-58, "an operator setting may
//! demand an attested key with an AAGUID allow-list").
//!
//! An AAGUID is only the key's own claim of its model: any software can
//! write any AAGUID. It means something only when the attestation that
//! carries it is signed by a certificate that chains to a maker's CA the
//! operator trusts. So the rule is both: the CAs, and the AAGUIDs each may
//! vouch for. webauthn-rs does the chain and AAGUID checks
//! (`AttestationCaList`); this builds the list from the configuration.

use std::collections::BTreeMap;

use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};

/// Keys must be attested by one of these CAs, as one of these models.
#[derive(Clone, Debug)]
pub struct AttestationRule {
    cas: AttestationCaList,
    aaguids: Vec<Uuid>,
}

/// What is wrong with the rule's settings, by setting.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationRuleError {
    #[error("{0:?} is not an AAGUID (a UUID like cb69481e-8ff7-4039-93ec-0a2729a154a8)")]
    BadAaguid(String),
    #[error("an AAGUID list means nothing without the CA certificates that vouch for it")]
    NoCas,
    #[error("CA certificates without AAGUIDs would allow nothing; list the AAGUIDs to accept")]
    NoAaguids,
    #[error("{file}: {reason}")]
    BadCa { file: String, reason: String },
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

impl AttestationRule {
    /// `cas` are (file name, PEM text) pairs; a file may hold several
    /// certificates. Every CA may vouch for every AAGUID listed.
    pub fn new(aaguids: &[String], cas: &[(String, String)]) -> Result<Self, AttestationRuleError> {
        let aaguids = aaguids
            .iter()
            .map(|a| Uuid::parse_str(a.trim()).map_err(|_| AttestationRuleError::BadAaguid(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if aaguids.is_empty() {
            return Err(AttestationRuleError::NoAaguids);
        }
        if cas.is_empty() {
            return Err(AttestationRuleError::NoCas);
        }
        let mut builder = AttestationCaListBuilder::new();
        for (file, pem) in cas {
            let bad = |reason: &str| AttestationRuleError::BadCa { file: file.clone(), reason: reason.to_owned() };
            let certs = pem_certificates(pem);
            if certs.is_empty() {
                return Err(bad("no PEM certificate (-----BEGIN CERTIFICATE-----) in it"));
            }
            for cert in certs {
                for aaguid in &aaguids {
                    builder
                        .insert_device_pem(cert.as_bytes(), *aaguid, aaguid.to_string(), BTreeMap::new())
                        .map_err(|e| bad(&format!("not a readable X.509 certificate ({e})")))?;
                }
            }
        }
        Ok(Self { cas: builder.build(), aaguids })
    }

    pub(super) fn ca_list(&self) -> AttestationCaList {
        self.cas.clone()
    }

    /// The AAGUIDs accepted, for the log and the docs.
    pub fn aaguids(&self) -> &[Uuid] {
        &self.aaguids
    }
}

/// Each certificate block of a PEM file, markers included; text between
/// blocks (comments, as CA bundles often have) is skipped.
fn pem_certificates(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else { break };
        let end = start + len + END.len();
        found.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";

    fn ca_pem() -> String {
        use crypto_glue::traits::{EncodePem, LineEndingPem};
        use webauthn_authenticator_rs::softtoken::SoftToken;
        let (_, ca) = SoftToken::new(false).unwrap();
        ca.to_pem(LineEndingPem::LF).unwrap()
    }

    #[test]
    fn a_rule_needs_both_aaguids_and_cas_and_names_what_is_wrong() {
        let cas = vec![("ca.pem".to_owned(), ca_pem())];
        assert!(AttestationRule::new(&[AAGUID.to_owned()], &cas).is_ok());
        assert_eq!(AttestationRule::new(&[AAGUID.to_owned()], &[]).unwrap_err(), AttestationRuleError::NoCas);
        assert_eq!(AttestationRule::new(&[], &cas).unwrap_err(), AttestationRuleError::NoAaguids);
        assert_eq!(
            AttestationRule::new(&["yubikey".to_owned()], &cas).unwrap_err(),
            AttestationRuleError::BadAaguid("yubikey".to_owned())
        );
        let not_pem = vec![("ca.pem".to_owned(), "hello".to_owned())];
        assert!(matches!(
            AttestationRule::new(&[AAGUID.to_owned()], &not_pem),
            Err(AttestationRuleError::BadCa { file, .. }) if file == "ca.pem"
        ));
        let garbage = vec![("ca.pem".to_owned(), format!("{BEGIN}\nAAAA\n{END}\n"))];
        assert!(matches!(
            AttestationRule::new(&[AAGUID.to_owned()], &garbage),
            Err(AttestationRuleError::BadCa { .. })
        ));
    }

    #[test]
    fn a_bundle_yields_each_certificate() {
        let one = ca_pem();
        let bundle = format!("# maker A\n{one}\n# maker B\n{}", ca_pem());
        assert_eq!(pem_certificates(&bundle).len(), 2);
        let rule = AttestationRule::new(&[AAGUID.to_owned()], &[("bundle.pem".to_owned(), bundle)]).unwrap();
        assert_eq!(rule.ca_list().len(), 2);
    }
}
