//! "Apps with access" (the person's side) and the operator's list of
//! registered apps.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::pages::{AdminClientsPage, AppRow, AppsPage, ClientRow};
use crate::AppState;
use crate::extract::Ctx;
use crate::web::{CsrfForm, SignedForm, WebSession, render, see_other};

#[derive(Deserialize)]
pub struct AppsQuery {
    revoked: Option<String>,
}

pub async fn page(State(s): State<AppState>, session: WebSession, Query(q): Query<AppsQuery>) -> Response {
    let apps = match s.oidc.apps_of(&session.me).await {
        Ok(a) => a,
        Err(e) => return super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let apps = apps
        .into_iter()
        .map(|(c, since)| AppRow { id: c.id, name: c.name, since: since.rfc3339().chars().take(10).collect() })
        .collect();
    render(
        StatusCode::OK,
        &AppsPage { nav: session.nav(), csrf: session.csrf.clone(), apps, revoked: q.revoked.is_some() },
    )
}

pub async fn revoke(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _): SignedForm<CsrfForm>,
) -> Response {
    match s.oidc.revoke_app(&s.twostep, &session.me, &id, &ctx).await {
        Ok(()) => see_other("/security/apps?revoked=1"),
        Err(e) => super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

pub async fn admin_page(State(s): State<AppState>, session: WebSession) -> Response {
    if s.twostep.admin_check(&session.me).await.is_err() {
        return crate::web::error::forbidden();
    }
    let clients = match s.oidc.clients().await {
        Ok(c) => c,
        Err(e) => {
            return super::json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &twostep_domain::oidc::OidcError::InvalidRequest(e.to_string()),
            );
        }
    };
    let clients = clients
        .into_iter()
        .map(|c| {
            let mut rules = Vec::new();
            if c.require_two_factor {
                rules.push("two-factor required".to_owned());
            }
            if let Some(org) = &c.org_id {
                rules.push(format!("members of {org} only"));
            }
            if c.skip_consent {
                rules.push("no consent asked".to_owned());
            }
            rules.push(format!("ID tokens {}", c.id_token_alg));
            ClientRow {
                kind: if c.secret_hash.is_some() { "confidential" } else { "public" },
                rules: rules.join("; "),
                id: c.id,
                name: c.name,
                redirect_uris: c.redirect_uris,
            }
        })
        .collect();
    render(StatusCode::OK, &AdminClientsPage { nav: session.nav(), issuer: s.oidc.issuer().to_owned(), clients })
}
