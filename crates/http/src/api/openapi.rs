//! `GET /api/openapi.json`: the OpenAPI 3 document, generated from the
//! handlers' annotations so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "twostep", description = "Self-hosted accounts with strong two-factor authentication."),
    paths(
        super::healthz,
        super::login::sign_up, super::login::login, super::login::verify, super::login::logout,
        super::me::me, super::me::reauth, super::me::reveal_codes, super::me::regenerate_codes,
        super::me::set_preferred_method,
        super::me::disable_two_factor,
        super::security::forgot, super::security::reset, super::security::change_password,
        super::security::sessions, super::security::revoke_session, super::security::revoke_others,
        super::security::browsers, super::security::forget_browser, super::security::security_log,
        super::security_log::readable,
        super::totp::start, super::totp::confirm, super::totp::qr_png, super::totp::list, super::totp::remove,
        super::codes::login_challenge, super::codes::reauth_challenge, super::codes::start_phone,
        super::codes::confirm_phone, super::codes::show_phone, super::codes::remove_phone,
        super::codes::send_email_verification, super::codes::confirm_email,
        super::orgs::create, super::orgs::list, super::orgs::show, super::orgs::invite, super::orgs::set_role,
        super::orgs::remove_member, super::orgs::set_policy, super::orgs::set_passkey_policy, super::orgs::invitations, super::orgs::revoke_invitation,
        super::orgs::my_invitations, super::orgs::accept_invitation, super::orgs::decline_invitation,
        super::allowlist::show, super::allowlist::replace,
        super::admin::users, super::admin::reset_two_factor, super::admin::disable, super::admin::enable,
        super::admin::audit,
        super::push::start_pairing, super::push::list, super::push::rename, super::push::remove,
        super::push::register, super::push::pending, super::push::answer, super::push::set_subscription,
        super::push::forget, super::push::vapid_key, super::push::status,
        super::webauthn::start, super::webauthn::finish, super::webauthn::rename,
        super::webauthn::start_passkey, super::webauthn::finish_passkey,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
