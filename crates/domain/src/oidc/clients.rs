//! Registering clients: the operator's side (`twostep oidc client …` and
//! the `[[oidc.clients]]` configuration).

use data_encoding::BASE64URL_NOPAD;

use super::keys::Alg;
use super::rules::{check_redirect_uri, sha256_hex};
use super::store::ClientRecord;
use super::{Oidc, OidcError};
use crate::error::StoreError;

/// A client as the operator describes it.
#[derive(Clone, Debug, Default)]
pub struct NewClient {
    pub name: String,
    /// A chosen id (from the configuration file); generated when `None`.
    pub id: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub require_two_factor: bool,
    pub org_id: Option<String>,
    pub skip_consent: bool,
    /// `RS256` when `None`.
    pub id_token_alg: Option<String>,
}

/// A client declared in the configuration file, with the SHA-256 of its
/// secret (`None`: public).
#[derive(Clone, Debug, Default)]
pub struct DeclaredClient {
    pub client: NewClient,
    pub secret_sha256: Option<String>,
}

/// A client just registered, with its secret in the clear this once.
#[derive(Debug)]
pub struct Registered {
    pub client: ClientRecord,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("a client needs a name")]
    NoName,
    #[error("a client needs at least one redirect URI")]
    NoRedirectUri,
    #[error(transparent)]
    Uri(#[from] super::rules::UriError),
    #[error("unknown ID token algorithm {0:?} (RS256, ES256 or EdDSA)")]
    Alg(String),
    #[error("a client id is 1 to 64 letters, digits, '-', '_' or '.'")]
    BadId,
    #[error("client {0:?} exists already")]
    Taken(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error("client {0:?} is public: it has no secret")]
    Public(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Oidc {
    fn new_secret(&self) -> String {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes);
        BASE64URL_NOPAD.encode(&bytes)
    }

    /// Checks and stores a client; a confidential one gets a 256-bit secret,
    /// returned once and stored only as its SHA-256.
    pub async fn add_client(&self, new: NewClient) -> Result<Registered, ClientError> {
        let record = self.client_record(&new)?;
        let secret = (!new.public).then(|| self.new_secret());
        let record = ClientRecord { secret_hash: secret.as_deref().map(sha256_hex), ..record };
        match self.store.insert_client(&record).await {
            Err(StoreError::Conflict) => Err(ClientError::Taken(record.id.clone())),
            r => r.map_err(ClientError::from),
        }?;
        Ok(Registered { client: record, secret })
    }

    fn client_record(&self, new: &NewClient) -> Result<ClientRecord, ClientError> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(ClientError::NoName);
        }
        if new.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in new.redirect_uris.iter().chain(&new.post_logout_redirect_uris) {
            check_redirect_uri(uri)?;
        }
        let alg = match &new.id_token_alg {
            Some(a) => Alg::parse(a).ok_or_else(|| ClientError::Alg(a.clone()))?,
            None => Alg::Rs256,
        };
        let id = match &new.id {
            Some(id) if valid_id(id) => id.clone(),
            Some(_) => return Err(ClientError::BadId),
            None => {
                let mut bytes = [0u8; 16];
                self.rng.fill(&mut bytes);
                BASE64URL_NOPAD.encode(&bytes)
            }
        };
        Ok(ClientRecord {
            id,
            name: name.to_owned(),
            secret_hash: None,
            redirect_uris: new.redirect_uris.clone(),
            post_logout_redirect_uris: new.post_logout_redirect_uris.clone(),
            require_two_factor: new.require_two_factor,
            org_id: new.org_id.clone(),
            skip_consent: new.skip_consent,
            id_token_alg: alg.as_str().to_owned(),
            created_at: self.clock.now(),
        })
    }

    /// Brings a client declared in the configuration file in line with it,
    /// keeping its secret: the file names the client's id and the SHA-256
    /// of its secret (so the file never holds the secret itself).
    pub async fn declare_client(&self, new: NewClient, secret_sha256: Option<String>) -> Result<(), ClientError> {
        if new.id.is_none() {
            return Err(ClientError::BadId);
        }
        let record =
            ClientRecord { secret_hash: secret_sha256.map(|h| h.to_ascii_lowercase()), ..self.client_record(&new)? };
        if self.store.client(&record.id).await?.is_some() {
            self.store.update_client(&record).await?;
        } else {
            self.store.insert_client(&record).await?;
        }
        Ok(())
    }

    pub async fn clients(&self) -> Result<Vec<ClientRecord>, ClientError> {
        Ok(self.store.clients().await?)
    }

    pub async fn client(&self, id: &str) -> Result<ClientRecord, ClientError> {
        self.store.client(id).await?.ok_or_else(|| ClientError::NotFound(id.to_owned()))
    }

    /// A new secret for a confidential client; the old one stops at once.
    pub async fn rotate_secret(&self, id: &str) -> Result<String, ClientError> {
        let client = self.client(id).await?;
        if client.secret_hash.is_none() {
            return Err(ClientError::Public(id.to_owned()));
        }
        let secret = self.new_secret();
        let client = ClientRecord { secret_hash: Some(sha256_hex(&secret)), ..client };
        self.store.update_client(&client).await?;
        Ok(secret)
    }

    /// Removes the client and everything it was granted.
    pub async fn remove_client(&self, id: &str) -> Result<(), ClientError> {
        if self.store.delete_client(id).await? { Ok(()) } else { Err(ClientError::NotFound(id.to_owned())) }
    }

    /// The client a request names, or `invalid_client`.
    pub(crate) async fn known_client(&self, id: &str) -> Result<ClientRecord, OidcError> {
        if id.is_empty() || id.len() > 128 {
            return Err(OidcError::InvalidClient);
        }
        self.store.client(id).await?.ok_or(OidcError::InvalidClient)
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
