//! An organisation's rules, switched by its owners on its page: "Require
//! two-factor" and "Refuse synced passkeys".

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::orgs::{Shown, org_path, refused};
use super::{SignedForm, see_other};
use crate::AppState;
use crate::extract::Ctx;

#[derive(Deserialize)]
pub struct TwoFactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    require: String,
}

/// The "Require two-factor" and "Stop requiring" buttons.
pub async fn set_two_factor(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, f): SignedForm<TwoFactorForm>,
) -> Response {
    let require = f.require == "true";
    match s.twostep.orgs().set_org_two_factor(&session.me, &id, require, &ctx).await {
        Ok(done) if done.required => {
            see_other(&format!("{}?notice=required&lacking={}&told={}", org_path(&id), done.lacking, done.told))
        }
        Ok(_) => see_other(&format!("{}?notice=not_required", org_path(&id))),
        Err(e) => refused(&s, &session, &id, e, Shown::ok()).await,
    }
}

#[derive(Deserialize)]
pub struct PasskeyPolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    refuse: String,
}

/// "Refuse synced passkeys" and "Allow synced passkeys".
pub async fn set_passkey_policy(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, f): SignedForm<PasskeyPolicyForm>,
) -> Response {
    let refuse = f.refuse == "true";
    match s.twostep.orgs().set_org_refuse_synced_passkeys(&session.me, &id, refuse, &ctx).await {
        Ok(true) => see_other(&format!("{}?notice=synced_refused", org_path(&id))),
        Ok(false) => see_other(&format!("{}?notice=synced_allowed", org_path(&id))),
        Err(e) => refused(&s, &session, &id, e, Shown::ok()).await,
    }
}

super::csrf_field!(TwoFactorForm, PasskeyPolicyForm);
