//! Push approval: the account's companion devices (`/me/push-devices…`),
//! the devices' own routes (`/push/…`, signed by the device key), and the
//! sign-in page's view of a push (`GET /login/challenge/{id}`).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::factors::push::store::PushDeviceRecord;
use twostep_domain::factors::push::{Decision, DeviceRequest, PairRequest, PushError, WebPushSubscription};

use super::ApiErrorBody;
use super::totp::EmptyBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx};

/// Device request headers (see `twostep_domain::factors::push::device_message`).
pub const DEVICE_HEADER: &str = "x-twostep-device";
pub const TIMESTAMP_HEADER: &str = "x-twostep-timestamp";
pub const SIGNATURE_HEADER: &str = "x-twostep-signature";

/// The largest body a device may send (a Web Push subscription fits).
const MAX_DEVICE_BODY: usize = 8 * 1024;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PairingResponse {
    /// Open on the device (the companion page), or give to `twostep companion enroll`.
    pairing_url: String,
    /// Seconds the link works (once).
    expires_in: i64,
    /// The link as an inline SVG QR code.
    qr_svg: String,
}

/// Start adding a companion device: a single-use pairing link (10 minutes).
/// Needs recent re-auth and 2FA already on.
#[utoipa::path(post, path = "/api/v1/me/push-devices/pairing", tag = "push", request_body = EmptyBody,
    security(("bearer" = [])),
    responses((status = 201, body = PairingResponse), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 409, description = "two_factor_not_enabled", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn start_pairing(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    ApiJson(_): ApiJson<EmptyBody>,
) -> ApiResult<Response> {
    let p = s.twostep.start_push_pairing(&me, &ctx).await?;
    let url = crate::web::companion::pairing_url(&s.twostep.settings().public_url, p.code.expose());
    let qr_svg = twostep_domain::factors::totp::otpauth::qr_svg(&url)
        .map_err(|e| twostep_domain::error::InternalError(format!("qr: {e}")))?;
    Ok((StatusCode::CREATED, Json(PairingResponse { pairing_url: url, expires_in: p.expires_in, qr_svg }))
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceResponse {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    last_seen_at: Option<String>,
    /// Whether the device can be woken by Web Push.
    web_push: bool,
}

impl From<&PushDeviceRecord> for DeviceResponse {
    fn from(d: &PushDeviceRecord) -> Self {
        let a = &d.authenticator;
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            created_at: a.created_at.rfc3339(),
            last_used_at: a.last_used_at.map(twostep_domain::time::Timestamp::rfc3339),
            last_seen_at: d.last_seen_at.map(twostep_domain::time::Timestamp::rfc3339),
            web_push: d.webpush_sealed.is_some(),
        }
    }
}

/// The account's companion devices (they are also authenticators of type `push`).
#[utoipa::path(get, path = "/api/v1/me/push-devices", tag = "push", security(("bearer" = [])),
    responses((status = 200, body = [DeviceResponse]), (status = 401, body = ApiErrorBody)))]
pub async fn list(State(s): State<AppState>, ApiSession(me): ApiSession) -> ApiResult<Json<Vec<DeviceResponse>>> {
    let devices = s.twostep.push_devices(&me.account.id).await?;
    Ok(Json(devices.iter().map(DeviceResponse::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenameRequest {
    name: String,
}

/// Rename a device.
#[utoipa::path(patch, path = "/api/v1/me/push-devices/{id}", tag = "push", request_body = RenameRequest,
    security(("bearer" = [])), params(("id" = String, Path, description = "The device's id")),
    responses((status = 200, body = DeviceResponse),
        (status = 400, description = "invalid_name or invalid_request", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, description = "enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn rename(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenameRequest>,
) -> ApiResult<Json<DeviceResponse>> {
    let d = s.twostep.rename_push_device(&me, &id, &req.name, &ctx).await?;
    Ok(Json(DeviceResponse::from(&d)))
}

/// Remove a device (re-auth), like `DELETE /api/v1/me/authenticators/{id}`.
#[utoipa::path(delete, path = "/api/v1/me/push-devices/{id}", tag = "push", security(("bearer" = [])),
    params(("id" = String, Path, description = "The device's id")),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required or two_factor_required_by_policy", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.remove_push_device(&me, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- the device's routes ----------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// The code from the pairing link (after `#pair=`).
    pairing_code: String,
    /// How the device is listed, e.g. "Pixel 8".
    #[serde(default)]
    name: String,
    /// base64url SEC1 uncompressed P-256 public key (WebCrypto `exportKey("raw")`).
    public_key: String,
    /// base64url P1363 ECDSA-SHA-256 signature over `twostep-pair-v1\n{pairing_code}\n{public_key}`.
    signature: String,
    /// The page's Web Push subscription (`PushSubscription.toJSON()`), if it has one.
    #[schema(value_type = Option<Object>)]
    web_push: Option<WebPushSubscription>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    device_id: String,
    name: String,
    /// The account the device now approves sign-ins for.
    email: String,
}

/// A device pairs itself with the code from its pairing link.
#[utoipa::path(post, path = "/api/v1/push/devices", tag = "push-device", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse),
        (status = 400, description = "invalid_token (pairing code), invalid_public_key, invalid_name, invalid_subscription", body = ApiErrorBody),
        (status = 401, description = "invalid_signature", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn register(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let paired = s
        .twostep
        .pair_push_device(
            PairRequest {
                code: &req.pairing_code,
                name: &req.name,
                public_key: &req.public_key,
                proof: &req.signature,
                subscription: req.web_push,
            },
            &ctx,
        )
        .await?;
    let body =
        RegisterResponse { device_id: paired.device.id.to_string(), name: paired.device.name, email: paired.email };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A request signed by a companion device: the device, once its three
/// headers check out against the method, path, query and exact body bytes.
pub struct SignedDevice {
    pub device: PushDeviceRecord,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<AppState> for SignedDevice {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_DEVICE_BODY).await.map_err(|_| ApiError::PayloadTooLarge)?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |o| &o.0);
        let path = uri.path_and_query().map_or_else(|| uri.path(), axum::http::uri::PathAndQuery::as_str);
        let request = DeviceRequest {
            device_id: header(DEVICE_HEADER),
            timestamp: header(TIMESTAMP_HEADER),
            signature: header(SIGNATURE_HEADER),
            method: parts.method.as_str(),
            path,
            body: &body,
        };
        let device = s.twostep.authenticate_device(&request).await?;
        Ok(Self { device, headers: parts.headers, body })
    }
}

impl SignedDevice {
    /// The body as JSON (after the signature over its bytes was checked).
    fn json<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        crate::extract::json_body(crate::extract::is_json(&self.headers), &self.body)
    }
}

/// For the OpenAPI document; read through `wait`.
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct WaitQuery {
    /// Seconds to wait for something to change (long-poll), at most 25.
    wait: Option<u64>,
}

/// `?wait=N`, capped; a value that is not a whole number is a 400 in the
/// contract's shape (not axum's plain-text rejection).
fn wait(q: &HashMap<String, String>) -> ApiResult<Duration> {
    let secs = match q.get("wait") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| ApiError::InvalidRequest("wait must be a whole number of seconds".to_owned()))?,
    };
    Ok(Duration::from_secs(secs.min(twostep_domain::factors::push::MAX_WAIT_SECS)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PushRequestResponse {
    id: String,
    /// The account being signed in to.
    email: String,
    /// Where the sign-in comes from.
    ip: String,
    /// Browser and system of the sign-in, e.g. "Chrome on Linux".
    client: String,
    place: Option<String>,
    created_at: String,
    expires_in: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PendingResponse {
    challenges: Vec<PushRequestResponse>,
    /// The device's name.
    device: String,
}

/// The device's pending sign-in requests; with `?wait=N` it answers as soon
/// as one arrives or after N seconds (long-poll). Signed request.
#[utoipa::path(get, path = "/api/v1/push/challenges", tag = "push-device", params(WaitQuery),
    responses((status = 200, body = PendingResponse), (status = 400, description = "invalid_request (wait)", body = ApiErrorBody),
        (status = 401, description = "invalid_signature", body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn pending(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    SignedDevice { device, .. }: SignedDevice,
) -> ApiResult<Json<PendingResponse>> {
    let list = s.twostep.device_pending(&device, wait(&q)?).await?;
    let challenges = list
        .into_iter()
        .map(|c| PushRequestResponse {
            id: c.id,
            email: c.email,
            ip: c.ip,
            client: c.client,
            place: c.place,
            created_at: c.created_at.rfc3339(),
            expires_in: c.expires_in,
        })
        .collect();
    Ok(Json(PendingResponse { challenges, device: device.authenticator.name }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AnswerRequest {
    /// `approve` or `deny`.
    decision: String,
    /// The number shown on the sign-in page, as the user typed it; needed to approve.
    number: Option<serde_json::Value>,
    /// With `deny`: the user did not try to sign in (the account is warned by e-mail).
    #[serde(default)]
    not_me: bool,
}

/// Approve or deny one request. The signature covers the challenge id (in
/// the path), the decision and the number. A wrong number denies the request.
#[utoipa::path(post, path = "/api/v1/push/challenges/{id}/answer", tag = "push-device", request_body = AnswerRequest,
    params(("id" = String, Path, description = "The sign-in request's id")),
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, description = "invalid_signature or wrong_number", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody),
        (status = 409, description = "push_closed: already answered or expired", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn answer(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    signed: SignedDevice,
) -> ApiResult<StatusCode> {
    let req: AnswerRequest = signed.json()?;
    let device = signed.device;
    let decision = match req.decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        _ => return Err(ApiError::InvalidRequest("decision must be approve or deny".to_owned())),
    };
    // Typed numbers arrive as "07", "7" or 7.
    let number = match &req.number {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(t)) => t.trim().parse::<i64>().ok(),
        Some(_) => return Err(ApiError::InvalidRequest("number must be a number".to_owned())),
    };
    s.twostep.answer_push(&device, &id, decision, number, req.not_me && decision == Decision::Deny, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriptionRequest {
    /// `PushSubscription.toJSON()`, or null to stop Web Push.
    #[schema(value_type = Option<Object>)]
    web_push: Option<WebPushSubscription>,
}

/// Set or clear the device's Web Push subscription. Signed request.
#[utoipa::path(put, path = "/api/v1/push/device/web-push", tag = "push-device", request_body = SubscriptionRequest,
    responses((status = 204), (status = 400, description = "invalid_subscription or invalid_request", body = ApiErrorBody),
        (status = 401, description = "invalid_signature", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn set_subscription(State(s): State<AppState>, signed: SignedDevice) -> ApiResult<StatusCode> {
    let req: SubscriptionRequest = signed.json()?;
    s.twostep.set_push_subscription(&signed.device, req.web_push).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The device removes itself. Signed request.
#[utoipa::path(delete, path = "/api/v1/push/device", tag = "push-device",
    responses((status = 204), (status = 401, description = "invalid_signature", body = ApiErrorBody),
        (status = 403, description = "two_factor_required_by_policy: it is the account's last factor", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn forget(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedDevice { device, .. }: SignedDevice,
) -> ApiResult<StatusCode> {
    s.twostep.forget_push_device(&device, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VapidResponse {
    /// The `applicationServerKey` for `pushManager.subscribe`; null when Web Push is off.
    public_key: Option<String>,
}

/// The server's VAPID public key (RFC 8292) for Web Push subscriptions.
#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push-device",
    responses((status = 200, body = VapidResponse)))]
pub async fn vapid_key(State(s): State<AppState>) -> Json<VapidResponse> {
    Json(VapidResponse { public_key: s.web.vapid_public_key.clone() })
}

// ----- the sign-in page ---------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct PushStatusResponse {
    /// `pending`, `approved`, `denied`, `expired`, or `used` (already a session).
    status: &'static str,
    /// The number to show, two digits.
    number: String,
    expires_in: i64,
}

/// Where a push stands; `?wait=N` long-polls while it is pending. On
/// `approved`, finish with `POST /api/v1/login/verify` and
/// `{"login_token", "method":"push", "code": <this id>}`.
#[utoipa::path(get, path = "/api/v1/login/challenge/{id}", tag = "sign-in",
    params(("id" = String, Path, description = "The challenge_id from POST /api/v1/login/challenge"), WaitQuery),
    responses((status = 200, body = PushStatusResponse), (status = 400, description = "invalid_request (wait)", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<PushStatusResponse>> {
    let wait = wait(&q)?;
    if id.len() > 64 {
        return Err(PushError::NotFound.into());
    }
    let v = s.twostep.push_status(&id, wait).await?;
    Ok(Json(PushStatusResponse {
        status: v.state.as_str(),
        number: format!("{:02}", v.number),
        expires_in: v.expires_in,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PushChallengeResponse {
    method: &'static str,
    /// The devices asked, by name.
    sent_to: String,
    expires_in: i64,
    /// For `GET /api/v1/login/challenge/{id}` and, once approved, the `code` of `/login/verify`.
    challenge_id: String,
    /// Show this; the user types it on the device.
    number: String,
}

/// A push raised by `POST /login/challenge` or `/me/reauth/challenge`.
pub(super) fn accepted(p: twostep_domain::factors::push::PushStarted) -> Response {
    let body = PushChallengeResponse {
        method: "push",
        sent_to: p.sent_to,
        expires_in: p.expires_in,
        challenge_id: p.challenge_id,
        number: format!("{:02}", p.number),
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
