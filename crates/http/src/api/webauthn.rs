//! Security keys and passkeys: registration, and renaming any
//! authenticator. Signing in with a key goes through `/login/challenge`
//! and `/login/verify` like every method.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::factors::webauthn::KeyKind;
use twostep_domain::factors::webauthn::store::WebauthnCredentialRecord;

use super::ApiErrorBody;
use super::totp::{AuthenticatorResponse, ConfirmResponse};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx, SetupSession};

/// A key as listed with the other authenticators.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyDetails {
    /// `security_key` or `passkey`, as registered.
    kind: String,
    /// The key may be synced between devices (a passkey in a password manager).
    backup_eligible: bool,
    /// It is synced now; false for a device-bound key.
    synced: bool,
}

impl KeyDetails {
    pub(super) fn of(k: &WebauthnCredentialRecord) -> Self {
        Self { kind: k.kind.clone(), backup_eligible: k.backup_eligible, synced: k.backup_state }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegistrationRequest {
    /// `security_key` (beside the password) or `passkey` (discoverable, user verification required).
    kind: String,
    /// What the key is called in the list ("YubiKey 5C"), 1 to 64 characters.
    name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistrationResponse {
    registration_id: String,
    /// For `navigator.credentials.create()`: `{"publicKey": …}`, binary fields base64url.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// Start registering a security key or passkey (re-auth). The registration
/// works once, for 5 minutes.
#[utoipa::path(post, path = "/api/v1/me/webauthn/registrations", tag = "authenticators",
    request_body = RegistrationRequest, security(("bearer" = [])),
    responses((status = 200, body = RegistrationResponse),
        (status = 400, description = "invalid_request or invalid_name", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, description = "reauth_required", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(req): ApiJson<RegistrationRequest>,
) -> ApiResult<Json<RegistrationResponse>> {
    let kind = KeyKind::parse(&req.kind)
        .ok_or_else(|| ApiError::InvalidRequest("kind is \"security_key\" or \"passkey\"".into()))?;
    let r = s.twostep.start_webauthn_registration(&me, kind, req.name.as_deref(), &ctx).await?;
    Ok(Json(RegistrationResponse { registration_id: r.id, options: r.options }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FinishRequest {
    /// The browser's `PublicKeyCredential.toJSON()`.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Finish a registration with the key's answer. `recovery_codes` come when
/// this turned 2FA on.
#[utoipa::path(post, path = "/api/v1/me/webauthn/registrations/{registration_id}", tag = "authenticators",
    request_body = FinishRequest, security(("bearer" = [])), params(("registration_id" = String, Path)),
    responses((status = 201, body = ConfirmResponse),
        (status = 400, description = "invalid_credential (a check failed); invalid_request; synced_key_refused: \
            the credential is backup-eligible (a synced passkey) and the operator (`webauthn.allow_synced = false`) \
            or one of the account's organisations (`refuse_synced_passkeys`) accepts only device-bound keys; \
            attestation_refused: the operator demands an attested key from a listed model (`webauthn.aaguids`) and \
            this one's attestation is missing, not from a trusted CA, or names another AAGUID", body = ApiErrorBody),
        (status = 401, description = "invalid_code: the registration is unknown, used or expired", body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody),
        (status = 409, description = "credential_taken", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn finish(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FinishRequest>,
) -> ApiResult<Response> {
    let c = s.twostep.finish_webauthn_registration(&me, &id, &req.credential, &ctx).await?;
    let body = ConfirmResponse::of(&c);
    let res = (StatusCode::CREATED, Json(body)).into_response();
    Ok(super::rotated_session(&s, &headers, c.session_token.as_ref(), res))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenameRequest {
    name: String,
}

/// Rename an authenticator (any kind).
#[utoipa::path(patch, path = "/api/v1/me/authenticators/{id}", tag = "authenticators", request_body = RenameRequest,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AuthenticatorResponse),
        (status = 400, description = "invalid_name or invalid_request", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn rename(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenameRequest>,
) -> ApiResult<Json<AuthenticatorResponse>> {
    let a = s.twostep.rename_authenticator(&me, &id, &req.name).await?;
    Ok(Json(AuthenticatorResponse::from(&a)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyChallengeResponse {
    challenge_id: String,
    /// For `navigator.credentials.get()`: `{"publicKey": …, "mediation"}`.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// Begin a sign-in with a passkey alone (no e-mail, no password). Works
/// once, for 5 minutes.
#[utoipa::path(post, path = "/api/v1/login/passkey", tag = "sign-in",
    responses((status = 200, body = PasskeyChallengeResponse),
        (status = 403, description = "passkey_sign_in_disabled: the operator turned passkey sign-in off \
            (`webauthn.passkey_sign_in = false`); sign in with e-mail and password, a passkey still serves as the \
            second factor", body = ApiErrorBody),
        (status = 429, body = ApiErrorBody)))]
pub async fn start_passkey(State(s): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<PasskeyChallengeResponse>> {
    if !s.twostep.passkey_sign_in_enabled() {
        return Err(ApiError::PasskeySignInDisabled);
    }
    let p = s.twostep.start_passkey_sign_in(&ctx).await?;
    Ok(Json(PasskeyChallengeResponse { challenge_id: p.id, options: p.options }))
}

/// Finish a passkey sign-in: a full session (the passkey is both factors).
#[utoipa::path(post, path = "/api/v1/login/passkey/{challenge_id}", tag = "sign-in", request_body = FinishRequest,
    params(("challenge_id" = String, Path)),
    responses((status = 200, body = super::login::LoginResponse),
        (status = 400, body = ApiErrorBody),
        (status = 401, description = "invalid_credentials: any refusal, one answer", body = ApiErrorBody),
        (status = 403, description = "factor_locked, or passkey_sign_in_disabled (turned off by the operator)", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody), (status = 429, body = ApiErrorBody)))]
pub async fn finish_passkey(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FinishRequest>,
) -> ApiResult<Json<super::login::LoginResponse>> {
    if !s.twostep.passkey_sign_in_enabled() {
        return Err(ApiError::PasskeySignInDisabled);
    }
    let outcome = s.twostep.finish_passkey_sign_in(&id, &req.credential, &ctx).await?;
    Ok(Json(super::login::LoginResponse::of(outcome)))
}
