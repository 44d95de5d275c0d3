//! The authorization endpoint: checking a request, deciding what the
//! browser must do next, and issuing the code.

use serde::Deserialize;

use super::facts::SessionFacts;
use super::rules::{self, challenge_well_formed, granted_scope, redirect_matches};
use super::store::{ClientRecord, CodeRecord, GrantRecord};
use super::{CODE_SECS, Oidc, OidcError};
use crate::audit::{AuditKind, RequestContext};
use crate::ids::AccountId;
use crate::service::{AuditEvent, Twostep};

/// The request's parameters as sent (RFC 6749 §4.1.1, OIDC Core §3.1.2.1).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// Request objects are not supported (OIDC Core §6): refused by name.
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// A request whose client and redirect URI checked out.
#[derive(Clone, Debug)]
#[expect(clippy::struct_excessive_bools, reason = "the prompt values and the 2FA demand are independent")]
pub struct AuthRequest {
    pub client: ClientRecord,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    /// The client or its `acr_values` ask for two factors.
    pub two_factor: bool,
    pub login_hint: Option<String>,
}

/// A request that cannot go on.
#[derive(Debug)]
pub enum Refused {
    /// The client or the redirect URI is unknown: shown as a page, never a
    /// redirect (RFC 6749 §4.1.2.1), or the URI would be an open redirect.
    Page(String),
    /// Everything else goes back to the client's registered URI.
    Redirect { redirect_uri: String, state: Option<String>, error: OidcError },
}

/// What the browser must do before a code can be issued.
#[derive(Debug)]
pub enum Decision {
    /// Sign in (again) through the sign-in pages, then come back.
    Login,
    /// Prove a second factor on this session (re-auth), then come back.
    StepUp,
    /// Set up a second factor first.
    Enrol,
    /// Ask the person to consent to what the client receives.
    Consent,
    Issue,
    Refuse(OidcError),
}

const MAX_PARAM: usize = 2048;

fn too_long(p: &AuthParams) -> bool {
    [&p.state, &p.nonce, &p.scope, &p.login_hint, &p.acr_values, &p.redirect_uri, &p.client_id]
        .into_iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
}

impl Oidc {
    pub async fn check_request(&self, p: &AuthParams) -> Result<AuthRequest, Refused> {
        let client_id = p.client_id.as_deref().unwrap_or_default();
        let client = match self.known_client(client_id).await {
            Ok(c) => c,
            Err(OidcError::InvalidClient) => {
                return Err(Refused::Page("The app that sent you here is not registered.".into()));
            }
            Err(e) => return Err(Refused::Page(e.description())),
        };
        // A single registered URI may be left out (RFC 6749 §3.1.2.3); with
        // several, the request must say which.
        let redirect_uri = match (&p.redirect_uri, client.redirect_uris.as_slice()) {
            (Some(uri), registered) if redirect_matches(registered, uri) => uri.clone(),
            (None, [only]) => only.clone(),
            _ => return Err(Refused::Page("The app asked to return you to an address it has not registered.".into())),
        };
        let refuse = |error| Refused::Redirect { redirect_uri: redirect_uri.clone(), state: p.state.clone(), error };
        if too_long(p) {
            return Err(refuse(OidcError::InvalidRequest("a parameter is too long".into())));
        }
        if p.request.is_some() || p.request_uri.is_some() {
            return Err(refuse(OidcError::InvalidRequest("request objects are not supported".into())));
        }
        if p.response_type.as_deref() != Some("code") {
            return Err(refuse(OidcError::UnsupportedResponseType));
        }
        let Some(scope) = granted_scope(p.scope.as_deref().unwrap_or_default()) else {
            return Err(refuse(OidcError::InvalidScope("the scope must include openid".into())));
        };
        // PKCE with S256 for every client, confidential or not.
        let challenge = p.code_challenge.clone().unwrap_or_default();
        if challenge.is_empty() {
            return Err(refuse(OidcError::InvalidRequest("code_challenge is required (PKCE)".into())));
        }
        if p.code_challenge_method.as_deref() != Some("S256") {
            return Err(refuse(OidcError::InvalidRequest("code_challenge_method must be S256".into())));
        }
        if !challenge_well_formed(&challenge) {
            return Err(refuse(OidcError::InvalidRequest("code_challenge is not an S256 challenge".into())));
        }
        let prompts: Vec<&str> = p.prompt.as_deref().unwrap_or_default().split_ascii_whitespace().collect();
        if prompts.iter().any(|v| !matches!(*v, "none" | "login" | "consent" | "select_account")) {
            return Err(refuse(OidcError::InvalidRequest("unknown prompt value".into())));
        }
        let prompt_none = prompts.contains(&"none");
        if prompt_none && prompts.len() > 1 {
            return Err(refuse(OidcError::InvalidRequest("prompt=none cannot be combined".into())));
        }
        let max_age = match p.max_age.as_deref() {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return Err(refuse(OidcError::InvalidRequest("max_age must be a whole number of seconds".into()))),
            },
        };
        Ok(AuthRequest {
            two_factor: client.require_two_factor || rules::wants_two_factor(p.acr_values.as_deref()),
            client,
            redirect_uri,
            scope,
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: challenge,
            prompt_none,
            prompt_login: prompts.contains(&"login"),
            prompt_consent: prompts.contains(&"consent"),
            max_age,
            login_hint: p.login_hint.clone(),
        })
    }

    /// The one place the order of the checks lives: who is signed in, how
    /// recently, whether they may use this client, whether they proved
    /// enough, whether they consented.
    pub fn decide(&self, req: &AuthRequest, facts: Option<&SessionFacts>, consented: Option<&str>) -> Decision {
        let interact = |d: Decision, e: OidcError| if req.prompt_none { Decision::Refuse(e) } else { d };
        let Some(f) = facts else { return interact(Decision::Login, OidcError::LoginRequired) };
        let stale = req.max_age.is_some_and(|m| self.clock.now().secs() - f.auth_time.secs() > m);
        if req.prompt_login || stale {
            return interact(Decision::Login, OidcError::LoginRequired);
        }
        if f.enrolling {
            return interact(Decision::Enrol, OidcError::InteractionRequired("two-factor set-up is required".into()));
        }
        if let Some(org) = &req.client.org_id
            && !f.orgs.iter().any(|(id, _)| id == org)
        {
            return Decision::Refuse(OidcError::AccessDenied("this app is for members of another organisation".into()));
        }
        if (req.two_factor || f.policy_requires_two_factor) && f.second_factor.is_none() {
            let e = OidcError::InteractionRequired("a second factor is required".into());
            return interact(if f.has_two_factor { Decision::StepUp } else { Decision::Enrol }, e);
        }
        let covered = consented.is_some_and(|c| req.scope.split_ascii_whitespace().all(|s| rules::has_scope(c, s)));
        if !req.client.skip_consent && (req.prompt_consent || !covered) {
            return interact(Decision::Consent, OidcError::ConsentRequired);
        }
        Decision::Issue
    }

    pub async fn consented(&self, account: &AccountId, client: &str) -> Result<Option<String>, OidcError> {
        Ok(self.store.consent(account, client).await?)
    }

    pub async fn consent(&self, account: &AccountId, req: &AuthRequest) -> Result<(), OidcError> {
        Ok(self.store.save_consent(account, &req.client.id, &req.scope, self.clock.now()).await?)
    }

    /// Stores a grant and its code; the URL to send the browser to.
    pub async fn issue_code(
        &self,
        twostep: &Twostep,
        req: &AuthRequest,
        f: &SessionFacts,
        ctx: &RequestContext,
    ) -> Result<String, OidcError> {
        let now = self.clock.now();
        let code = self.random();
        let grant = GrantRecord {
            id: self.random(),
            client_id: req.client.id.clone(),
            account_id: f.account_id.clone(),
            scope: req.scope.clone(),
            nonce: req.nonce.clone(),
            auth_time: f.auth_time,
            acr: rules::acr(f.second_factor.is_some()).to_owned(),
            amr: rules::amr(f.password, f.second_factor.as_deref()).join(" "),
            groups: f.groups(),
            created_at: now,
            revoked_at: None,
            session_id: Some(f.session_id.clone()),
        };
        let record = CodeRecord {
            hash: rules::sha256_hex(&code),
            grant_id: grant.id.clone(),
            client_id: req.client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at: now.plus_secs(CODE_SECS),
            consumed_at: None,
        };
        self.store.insert_grant_with_code(&grant, &record).await?;
        let details = format!("client {}; acr {}; amr {}", req.client.id, grant.acr, grant.amr);
        twostep.audit(AuditEvent::user(AuditKind::OidcCodeIssued, &f.account_id).details(details), ctx).await;
        Ok(self.with_params(&req.redirect_uri, &[("code", Some(&code)), ("state", req.state.as_deref())]))
    }

    /// Audits a refusal and builds the redirect carrying it (with `state`).
    #[expect(clippy::too_many_arguments, reason = "the redirect's parts and the audit's")]
    pub async fn refuse(
        &self,
        twostep: &Twostep,
        account: Option<&AccountId>,
        client: &str,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OidcError,
        ctx: &RequestContext,
    ) -> String {
        self.audit_refusal(twostep, account, client, error, ctx).await;
        let description = error.description();
        self.with_params(
            redirect_uri,
            &[("error", Some(error.code())), ("error_description", Some(&description)), ("state", state)],
        )
    }

    pub async fn audit_refusal(
        &self,
        twostep: &Twostep,
        account: Option<&AccountId>,
        client: &str,
        error: &OidcError,
        ctx: &RequestContext,
    ) {
        let event = match account {
            Some(a) => AuditEvent::user(AuditKind::OidcRefused, a),
            None => AuditEvent::anonymous(AuditKind::OidcRefused),
        };
        let client: String = client.chars().take(128).collect();
        twostep.audit(event.failed().details(format!("client {client}; {}", error.code())), ctx).await;
    }

    /// `uri` with the response parameters and `iss` (RFC 9207) appended.
    fn with_params(&self, uri: &str, params: &[(&str, Option<&str>)]) -> String {
        let Ok(mut url) = url::Url::parse(uri) else { return uri.to_owned() };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("iss", &self.issuer);
        }
        url.into()
    }
}
