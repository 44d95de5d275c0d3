//! Errors of each domain area. Each variant has a stable snake_case `code()`
//! that clients rely on; only the HTTP crate turns them into statuses.

use crate::accounts::email::EmailError;
use crate::accounts::password::PasswordError;

/// Storage failed. Details go to the log, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unique constraint violated")]
    Conflict,
    #[error("storage: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error(transparent)]
    WeakPassword(#[from] PasswordError),
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// Too many sign-ups from this address or for this e-mail (SEC-36).
    #[error("too many sign-ups; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("no such account")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("incorrect email or password")]
    InvalidCredentials,
    #[error("wrong or expired code")]
    InvalidCode,
    /// A wrong code counted on a live login token: `tries_left` more before
    /// the sign-in starts over (§2.6).
    #[error("wrong or expired code")]
    WrongCode { tries_left: i64 },
    #[error("too many attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("this method is locked after too many wrong codes; use a recovery code")]
    FactorLocked,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("this link is invalid, used or expired; ask for a new one")]
    InvalidResetLink,
    #[error(transparent)]
    WeakPassword(#[from] PasswordError),
    #[error("incorrect password")]
    InvalidPassword,
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error("too many attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in, or the session has ended")]
    Unauthenticated,
    /// The session was used from an address outside the account's IP
    /// allow-list; it has been ended (SEC-61).
    #[error("this account may not be used from your address; the session was ended")]
    IpNotAllowed,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error("wrong or expired code")]
    InvalidCode,
    #[error("this set-up has expired or was replaced by a newer one; start again")]
    EnrollmentGone,
    #[error("incorrect password")]
    InvalidPassword,
    #[error("no such authenticator")]
    NotFound,
    #[error("two-factor authentication is not enabled")]
    TwoFactorNotEnabled,
    #[error("give a password, or a method and a code")]
    NothingToProve,
    #[error("unknown method")]
    UnknownMethod,
    #[error("names are 1 to 64 characters")]
    InvalidName,
    /// A factor's own refusal of what it was given (a token's malformed
    /// secret, say), with its stable API code, so that a new factor's
    /// refusals need no variant here.
    #[error("{message}")]
    Refused { code: &'static str, message: &'static str },
    /// A security key's answer failed a check (SEC-58/59); the log says which.
    #[error("the security key's answer was not accepted; try again")]
    InvalidCredential,
    #[error("this security key is registered already")]
    CredentialTaken,
    /// A backup-eligible (synced) credential, refused by the operator or by
    /// one of the account's organisations.
    /// `by`: "on this server", or "by the organisation \"Acme\"".
    #[error("synced passkeys are not accepted {by}; use a security key or a passkey that stays on one device")]
    SyncedKeyRefused { by: String },
    /// The key's attestation is missing, or not from a listed model (the
    /// operator's `webauthn.aaguids`).
    #[error("this model of security key is not accepted here; use one your administrator allows")]
    AttestationRefused,
    #[error("too many attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("this method is locked after too many wrong codes; use a recovery code")]
    FactorLocked,
    /// The account's last factor, or 2FA as a whole, cannot go: `by` says
    /// who requires it.
    #[error("{by}: the last second factor cannot be removed; add another one first")]
    RequiredByPolicy { by: crate::policy::Requirement },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Anything that is our fault: storage, crypto or hashing failures.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InternalError(pub String);

impl From<StoreError> for InternalError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::crypto::CryptoError> for InternalError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self(format!("crypto: {e}"))
    }
}

impl From<crate::accounts::password::HashError> for InternalError {
    fn from(e: crate::accounts::password::HashError) -> Self {
        Self(e.to_string())
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<StoreError> for $t {
            fn from(e: StoreError) -> Self { Self::Internal(e.into()) }
        }
        impl From<crate::crypto::CryptoError> for $t {
            fn from(e: crate::crypto::CryptoError) -> Self { Self::Internal(e.into()) }
        }
    )*};
}
internal_from!(AccountError, LoginError, SessionError, FactorError, CredentialError);

impl From<SessionError> for FactorError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Unauthenticated | SessionError::IpNotAllowed => Self::ReauthRequired,
            SessionError::Internal(i) => Self::Internal(i),
        }
    }
}
