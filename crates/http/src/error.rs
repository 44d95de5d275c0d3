//! The one place an error becomes an HTTP status and a JSON body.
//!
//! The match is exhaustive, with no `_ =>` arm: a new domain variant does
//! not compile until someone decides its status. Internal details go to the
//! log under the request id; the client gets a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use twostep_domain::error::{AccountError, CredentialError, FactorError, InternalError, LoginError, SessionError};
use twostep_domain::factors::push::PushError;
use twostep_domain::factors::sent_code::SendError;
use twostep_domain::policy::admin::AdminError;
use twostep_domain::policy::allowlist::AllowlistError;
use twostep_domain::policy::orgs::OrgError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("send a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("sign in first")]
    Unauthenticated,
    #[error("missing or invalid CSRF token")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Factor(#[from] FactorError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("set up two-factor authentication first: this session may only do that")]
    EnrollmentRequired,
    /// The operator turned off signing in with a passkey alone
    /// (`webauthn.passkey_sign_in`); passkeys still serve as second factors.
    #[error("signing in with a passkey alone is turned off here; sign in with your e-mail and password")]
    PasskeySignInDisabled,
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// `{"error": {"code", "message"}}`, the contract's error shape.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_credentials`.
    pub code: &'static str,
    /// Human-readable text; may change.
    pub message: String,
    /// With `owners_without_two_factor`: the owners who lack 2FA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
    /// With `invalid_ip_range` (and a refused label): the entry, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// With `would_lock_out`: the address the request came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_ip: Option<String>,
    /// With `invalid_code` at the second sign-in step: the wrong codes the
    /// login token still takes before the sign-in must start over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<i64>,
    /// With `two_factor_required_by_policy`: the organisations whose rule
    /// requires it (by name), and whether the operator's mandate does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_by: Option<RequiredBy>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RequiredBy {
    pub organisations: Vec<String>,
    pub operator: bool,
}

impl ApiError {
    /// Seconds for `Retry-After` on a 429.
    fn retry_after(&self) -> Option<i64> {
        match self {
            Self::Login(LoginError::Throttled { retry_after })
            | Self::Factor(FactorError::Throttled { retry_after })
            | Self::Credential(CredentialError::Throttled { retry_after })
            | Self::Send(SendError::Throttled { retry_after } | SendError::SentForEarlier { retry_after })
            | Self::Push(PushError::Throttled { retry_after })
            | Self::Org(OrgError::Throttled { retry_after })
            | Self::Account(AccountError::Throttled { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }

    #[expect(clippy::too_many_lines, reason = "one exhaustive match: every error's status, in one place")]
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AccountError as A;
        use CredentialError as C;
        use FactorError as F;
        use StatusCode as S;
        match self {
            Self::InvalidRequest(_)
            | Self::Factor(F::NothingToProve | F::UnknownMethod)
            | Self::Admin(AdminError::InvalidFilter(_)) => (S::BAD_REQUEST, "invalid_request"),
            Self::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unauthenticated | Self::Session(SessionError::Unauthenticated) => {
                (S::UNAUTHORIZED, "unauthenticated")
            }
            Self::Csrf => (S::FORBIDDEN, "csrf_failed"),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            // A non-admin is told the admin area does not exist.
            Self::NotFound
            | Self::Factor(F::NotFound)
            | Self::Account(A::NotFound)
            | Self::Credential(C::NotFound)
            | Self::Org(OrgError::NotFound)
            | Self::Admin(AdminError::NotAdmin | AdminError::NotFound)
            | Self::Push(PushError::NotFound) => (S::NOT_FOUND, "not_found"),
            Self::Admin(AdminError::OwnAccount) => (S::CONFLICT, "own_account"),
            Self::Account(A::InvalidEmail(_)) | Self::Org(OrgError::InvalidEmail) => (S::BAD_REQUEST, "invalid_email"),
            Self::Account(A::WeakPassword(_)) | Self::Credential(C::WeakPassword(_)) => {
                (S::BAD_REQUEST, "weak_password")
            }
            Self::Account(A::EmailTaken) => (S::CONFLICT, "email_taken"),
            Self::Login(LoginError::InvalidCredentials)
            | Self::Factor(F::InvalidPassword)
            | Self::Credential(C::InvalidPassword) => (S::UNAUTHORIZED, "invalid_credentials"),
            Self::Login(LoginError::InvalidCode | LoginError::WrongCode { .. })
            | Self::Factor(F::InvalidCode | F::EnrollmentGone) => (S::UNAUTHORIZED, "invalid_code"),
            Self::Factor(F::ReauthRequired)
            | Self::Credential(C::ReauthRequired)
            | Self::Send(SendError::ReauthRequired)
            | Self::Admin(AdminError::ReauthRequired)
            | Self::Allowlist(AllowlistError::ReauthRequired)
            | Self::Push(PushError::ReauthRequired) => (S::FORBIDDEN, "reauth_required"),
            Self::Credential(C::InvalidResetLink) | Self::Push(PushError::InvalidPairing) => {
                (S::BAD_REQUEST, "invalid_token")
            }
            Self::Send(SendError::LoginExpired) | Self::Push(PushError::LoginExpired) => {
                (S::UNAUTHORIZED, "invalid_token")
            }
            Self::Login(LoginError::Throttled { .. })
            | Self::Factor(F::Throttled { .. })
            | Self::Credential(C::Throttled { .. }) => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::Login(LoginError::FactorLocked)
            | Self::Factor(F::FactorLocked)
            | Self::Send(SendError::FactorLocked)
            | Self::Push(PushError::FactorLocked) => (S::FORBIDDEN, "factor_locked"),
            Self::Factor(F::TwoFactorNotEnabled) | Self::Push(PushError::TwoFactorNotEnabled) => {
                (S::CONFLICT, "two_factor_not_enabled")
            }
            Self::Factor(F::InvalidCredential) => (S::BAD_REQUEST, "invalid_credential"),
            Self::Factor(F::Refused { code, .. }) => (S::BAD_REQUEST, code),
            Self::Factor(F::CredentialTaken) => (S::CONFLICT, "credential_taken"),
            Self::Factor(F::SyncedKeyRefused { .. }) => (S::BAD_REQUEST, "synced_key_refused"),
            Self::Factor(F::AttestationRefused) => (S::BAD_REQUEST, "attestation_refused"),
            Self::Factor(F::InvalidName) | Self::Org(OrgError::InvalidName) | Self::Push(PushError::InvalidName) => {
                (S::BAD_REQUEST, "invalid_name")
            }
            Self::Send(SendError::Throttled { .. } | SendError::SentForEarlier { .. })
            | Self::Push(PushError::Throttled { .. })
            | Self::Org(OrgError::Throttled { .. })
            | Self::Account(A::Throttled { .. }) => (S::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::EnrollmentRequired | Self::Allowlist(AllowlistError::EnrollmentRequired) => {
                (S::FORBIDDEN, "enrollment_required")
            }
            Self::Factor(F::RequiredByPolicy { .. }) | Self::Allowlist(AllowlistError::RequiredByPolicy) => {
                (S::FORBIDDEN, "two_factor_required_by_policy")
            }
            Self::Org(OrgError::NotOwner) => (S::FORBIDDEN, "forbidden"),
            Self::PasskeySignInDisabled => (S::FORBIDDEN, "passkey_sign_in_disabled"),
            Self::Org(OrgError::EmailUnverified) => (S::FORBIDDEN, "email_unverified"),
            Self::Org(OrgError::TwoFactorRequired) | Self::Admin(AdminError::TwoFactorRequired) => {
                (S::FORBIDDEN, "two_factor_required")
            }
            Self::Org(OrgError::OwnersWithoutTwoFactor { .. }) => (S::CONFLICT, "owners_without_two_factor"),
            Self::Org(OrgError::AlreadyMember) => (S::CONFLICT, "already_member"),
            Self::Org(OrgError::LastOwner) => (S::CONFLICT, "last_owner"),
            Self::Send(SendError::MethodUnavailable) | Self::Push(PushError::MethodUnavailable) => {
                (S::BAD_REQUEST, "method_unavailable")
            }
            Self::Send(SendError::InvalidPhone(_)) => (S::BAD_REQUEST, "invalid_phone"),
            Self::Session(SessionError::IpNotAllowed) => (S::FORBIDDEN, "ip_not_allowed"),
            Self::Allowlist(AllowlistError::InvalidRange { .. }) => (S::BAD_REQUEST, "invalid_ip_range"),
            Self::Allowlist(AllowlistError::InvalidLabel { .. } | AllowlistError::TooManyEntries) => {
                (S::BAD_REQUEST, "invalid_request")
            }
            Self::Allowlist(AllowlistError::WouldLockOut { .. }) => (S::CONFLICT, "would_lock_out"),
            Self::Push(PushError::InvalidKey) => (S::BAD_REQUEST, "invalid_public_key"),
            Self::Push(PushError::InvalidSubscription) => (S::BAD_REQUEST, "invalid_subscription"),
            Self::Push(PushError::InvalidSignature) => (S::UNAUTHORIZED, "invalid_signature"),
            Self::Push(PushError::Closed) => (S::CONFLICT, "push_closed"),
            Self::Push(PushError::WrongNumber) => (S::UNAUTHORIZED, "wrong_number"),
            Self::Internal(_)
            | Self::Account(A::Internal(_))
            | Self::Login(LoginError::Internal(_))
            | Self::Session(SessionError::Internal(_))
            | Self::Factor(F::Internal(_))
            | Self::Credential(C::Internal(_))
            | Self::Send(SendError::Internal(_))
            | Self::Org(OrgError::Internal(_))
            | Self::Admin(AdminError::Internal(_))
            | Self::Allowlist(AllowlistError::Internal(_))
            | Self::Push(PushError::Internal(_)) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "something went wrong on our side; try again".to_owned()
        } else {
            self.to_string()
        };
        let owners = match &self {
            Self::Org(OrgError::OwnersWithoutTwoFactor { owners }) => Some(owners.clone()),
            _ => None,
        };
        let (entry, current_ip) = match &self {
            Self::Allowlist(AllowlistError::InvalidRange { entry, .. } | AllowlistError::InvalidLabel { entry }) => {
                (Some(entry.clone()), None)
            }
            Self::Allowlist(AllowlistError::WouldLockOut { current_ip }) => (None, Some(current_ip.clone())),
            _ => (None, None),
        };
        let tries_left = match &self {
            Self::Login(LoginError::WrongCode { tries_left }) => Some(*tries_left),
            _ => None,
        };
        let required_by = match &self {
            Self::Factor(FactorError::RequiredByPolicy { by }) => {
                Some(RequiredBy { organisations: by.orgs.clone(), operator: by.operator })
            }
            _ => None,
        };
        let detail = ErrorDetail { code, message, owners, entry, current_ip, tries_left, required_by };
        let mut res = (status, Json(ErrorBody { error: detail })).into_response();
        res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs.max(1)));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<twostep_domain::factors::ChallengeError> for ApiError {
    fn from(e: twostep_domain::factors::ChallengeError) -> Self {
        match e {
            twostep_domain::factors::ChallengeError::Send(e) => Self::Send(e),
            twostep_domain::factors::ChallengeError::Push(e) => Self::Push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_factors_own_refusal_answers_400_with_its_code_and_words() {
        let e = ApiError::Factor(FactorError::Refused { code: "invalid_secret", message: "not a valid token secret" });
        assert_eq!(e.status_and_code(), (StatusCode::BAD_REQUEST, "invalid_secret"));
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "invalid_secret");
        assert_eq!(json["error"]["message"], "not a valid token secret");
    }
}
