//! The `[[oidc.clients]]` section: OpenID Connect clients declared in the
//! configuration file, for deployments kept in version control. The file
//! holds each client's id and the SHA-256 of its secret, never the secret
//! (`twostep oidc generate-secret` prints both).

use serde::{Deserialize, Serialize};
use twostep_domain::oidc::clients::{DeclaredClient, NewClient};
use twostep_domain::oidc::keys::Alg;
use twostep_domain::oidc::rules::check_redirect_uri;

use crate::config::ConfigError;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    pub clients: Vec<ClientSpec>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the client secret; leave out for a public client.
    pub secret_sha256: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub require_two_factor: bool,
    /// Only members of this organisation (its id).
    pub org: Option<String>,
    pub skip_consent: bool,
    pub id_token_alg: Option<String>,
}

/// The declared clients, checked: a bad one stops the start with its key.
pub fn resolve(config: &OidcConfig) -> Result<Vec<DeclaredClient>, ConfigError> {
    let mut out: Vec<DeclaredClient> = Vec::new();
    for (i, c) in config.clients.iter().enumerate() {
        let bad = |field: &str, message: String| ConfigError { key: format!("oidc.clients[{i}].{field}"), message };
        let id_ok = (1..=64).contains(&c.id.len())
            && c.id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(bad("id", "1 to 64 letters, digits, '-', '_' or '.'".into()));
        }
        if out.iter().any(|d| d.client.id.as_deref() == Some(c.id.as_str())) {
            return Err(bad("id", format!("{:?} is declared twice", c.id)));
        }
        if c.name.trim().is_empty() {
            return Err(bad("name", "required".into()));
        }
        if c.redirect_uris.is_empty() {
            return Err(bad("redirect_uris", "at least one is required".into()));
        }
        for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
            check_redirect_uri(uri).map_err(|e| bad("redirect_uris", e.to_string()))?;
        }
        if let Some(h) = &c.secret_sha256
            && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("secret_sha256", "64 hex digits (twostep oidc generate-secret)".into()));
        }
        if let Some(a) = &c.id_token_alg
            && Alg::parse(a).is_none()
        {
            return Err(bad("id_token_alg", "RS256, ES256 or EdDSA".into()));
        }
        out.push(DeclaredClient {
            client: NewClient {
                name: c.name.clone(),
                id: Some(c.id.clone()),
                redirect_uris: c.redirect_uris.clone(),
                post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                public: c.secret_sha256.is_none(),
                require_two_factor: c.require_two_factor,
                org_id: c.org.clone(),
                skip_consent: c.skip_consent,
                id_token_alg: c.id_token_alg.clone(),
            },
            secret_sha256: c.secret_sha256.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_clients_are_checked_with_their_key() {
        let ok: OidcConfig = toml::from_str(
            r#"
            [[clients]]
            id = "grafana"
            name = "Grafana"
            secret_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
            redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
            require_two_factor = true
            "#,
        )
        .expect("toml");
        let d = resolve(&ok).expect("valid");
        assert_eq!(d[0].client.id.as_deref(), Some("grafana"));
        assert!(!d[0].client.public);
        let bad: OidcConfig =
            toml::from_str("[[clients]]\nid = \"x\"\nname = \"X\"\nredirect_uris = [\"http://x.example/cb\"]")
                .expect("toml");
        assert_eq!(resolve(&bad).expect_err("http").key, "oidc.clients[0].redirect_uris");
    }
}
