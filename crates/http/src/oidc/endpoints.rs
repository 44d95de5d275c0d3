//! The endpoints relying parties call directly: discovery, JWKS, token,
//! userinfo, revocation and introspection.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use twostep_domain::oidc::OidcError;
use twostep_domain::oidc::rules::{ACR_1FA, ACR_2FA, SCOPES};
use twostep_domain::oidc::tokens::{ClientAuth, TokenParams};

use super::{json_error, no_store, status_of};
use crate::AppState;
use crate::extract::Ctx;

pub async fn discovery(State(s): State<AppState>) -> Response {
    let iss = s.oidc.issuer();
    let doc = serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}{}", super::AUTHORIZE_PATH),
        "token_endpoint": format!("{iss}/oidc/token"),
        "userinfo_endpoint": format!("{iss}/oidc/userinfo"),
        "jwks_uri": format!("{iss}/oidc/jwks"),
        "revocation_endpoint": format!("{iss}/oidc/revoke"),
        "introspection_endpoint": format!("{iss}/oidc/introspect"),
        "end_session_endpoint": format!("{iss}/oidc/logout"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [ACR_1FA, ACR_2FA],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
                             "at_hash", "email", "email_verified", "groups"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    axum::Json(doc).into_response()
}

pub async fn jwks(State(s): State<AppState>) -> Response {
    match s.oidc.jwks(s.twostep.keys()).await {
        Ok(doc) => {
            let mut res = axum::Json(doc).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            res
        }
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// A form body (`application/x-www-form-urlencoded`), read by hand so a
/// malformed one is an `invalid_request` in the spec's shape.
fn form<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &Bytes) -> Result<T, OidcError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OidcError::InvalidRequest("the body must be application/x-www-form-urlencoded".into()));
    }
    // RFC 6749 §3.2: parameters must not repeat.
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| OidcError::InvalidRequest("the form cannot be read".into()))?;
    let mut seen = std::collections::HashSet::new();
    if pairs.iter().any(|(k, _)| !seen.insert(k.as_str())) {
        return Err(OidcError::InvalidRequest("a parameter is repeated".into()));
    }
    serde_urlencoded::from_bytes(body).map_err(|_| OidcError::InvalidRequest("the form cannot be read".into()))
}

#[derive(Default, serde::Deserialize)]
struct ClientFields {
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// HTTP Basic (RFC 6749 §2.3.1: each part form-encoded) or the body's
/// fields; both at once is refused.
fn client_auth(headers: &HeaderMap, body: &Bytes) -> Result<(ClientAuth, bool), OidcError> {
    let fields: ClientFields = form(headers, body)?;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    if let Some(b) = basic {
        if fields.client_secret.is_some() {
            return Err(OidcError::InvalidRequest("use one client authentication method".into()));
        }
        let bad = || OidcError::InvalidClient;
        let decoded = data_encoding::BASE64.decode(b.trim().as_bytes()).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let unform = |v: &str| -> Result<String, OidcError> {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={v}")).map_err(|_| bad())?;
            Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
        };
        let id = unform(id)?;
        if fields.client_id.as_deref().is_some_and(|f| f != id) {
            return Err(OidcError::InvalidRequest("client_id differs from the Authorization header".into()));
        }
        return Ok((ClientAuth { client_id: id, secret: Some(unform(secret)?) }, true));
    }
    let id = fields.client_id.ok_or(OidcError::InvalidClient)?;
    Ok((ClientAuth { client_id: id, secret: fields.client_secret }, false))
}

/// A refusal of a client-authenticated endpoint; a failed Basic
/// authentication is answered with a challenge (RFC 6749 §5.2).
fn refusal(e: &OidcError, basic: bool) -> Response {
    let mut res = json_error(status_of(e), e);
    if basic && matches!(e, OidcError::InvalidClient) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"twostep\""));
    }
    res
}

pub async fn token(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, body: Bytes) -> Response {
    let (auth, basic) = match client_auth(&headers, &body) {
        Ok(a) => a,
        Err(e) => return refusal(&e, false),
    };
    let params: TokenParams = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return refusal(&e, basic),
    };
    match s.oidc.token(&s.twostep, s.twostep.keys(), &auth, &params, &ctx).await {
        Ok(t) => no_store(axum::Json(t).into_response()),
        Err(e) => refusal(&e, basic),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?;
    Some(t.trim().to_owned())
}

async fn userinfo_for(s: &AppState, token: Option<String>) -> Response {
    let challenge = |e: &OidcError| {
        let mut res = json_error(status_of(e), e);
        let v = format!("Bearer error=\"{}\", error_description=\"{}\"", e.code(), e.description());
        if let Ok(v) = HeaderValue::from_str(&v) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res
    };
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 256) else {
        return challenge(&OidcError::InvalidToken);
    };
    match s.oidc.userinfo(&s.twostep, &token).await {
        Ok(claims) => no_store(axum::Json(claims).into_response()),
        Err(e) => challenge(&e),
    }
}

pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    userinfo_for(&s, bearer(&headers)).await
}

#[derive(Default, serde::Deserialize)]
struct TokenField {
    access_token: Option<String>,
    token: Option<String>,
}

/// POST takes the token from the header or, per RFC 6750 §2.2, the body.
pub async fn userinfo_post(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers).or_else(|| form::<TokenField>(&headers, &body).ok().and_then(|f| f.access_token));
    userinfo_for(&s, token).await
}

fn presented(headers: &HeaderMap, body: &Bytes) -> Result<String, OidcError> {
    let f: TokenField = form(headers, body)?;
    f.token.filter(|t| !t.is_empty()).ok_or_else(|| OidcError::InvalidRequest("token is required".into()))
}

pub async fn revoke(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, body: Bytes) -> Response {
    let (auth, basic) = match client_auth(&headers, &body) {
        Ok(a) => a,
        Err(e) => return refusal(&e, false),
    };
    let token = match presented(&headers, &body) {
        Ok(t) => t,
        Err(e) => return refusal(&e, basic),
    };
    match s.oidc.revoke(&s.twostep, &auth, &token, &ctx).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => refusal(&e, basic),
    }
}

pub async fn introspect(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (auth, basic) = match client_auth(&headers, &body) {
        Ok(a) => a,
        Err(e) => return refusal(&e, false),
    };
    let token = match presented(&headers, &body) {
        Ok(t) => t,
        Err(e) => return refusal(&e, basic),
    };
    match s.oidc.introspect(&auth, &token).await {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => refusal(&e, basic),
    }
}
