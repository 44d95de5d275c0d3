//! The token endpoint (codes and refresh tokens), userinfo, revocation
//! (RFC 7009), introspection (RFC 7662) and the logout hint.

use serde::{Deserialize, Serialize};

use super::keys::{Alg, half_hash};
use super::rules::{self, has_scope, secret_matches, sha256_hex, verifier_matches};
use super::store::{ClientRecord, GrantRecord, Spend, TokenKind, TokenRecord};
use super::{ACCESS_TOKEN_SECS, ID_TOKEN_SECS, Oidc, OidcError, REFRESH_TOKEN_SECS};
use crate::audit::{AuditKind, RequestContext};
use crate::crypto::Keyring;
use crate::service::{AuditEvent, Twostep};

/// How a client authenticated: the id, and the secret if it sent one
/// (HTTP Basic or the form body; the HTTP layer has refused both at once).
#[derive(Debug, Default)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// A code or refresh token that could not be spent, and the grant the
/// attempt revoked (to be audited), if any.
#[derive(Debug)]
pub struct Spent {
    pub error: OidcError,
    pub revoked: Option<(GrantRecord, &'static str)>,
}

impl From<OidcError> for Spent {
    fn from(error: OidcError) -> Self {
        Self { error, revoked: None }
    }
}

impl Oidc {
    /// The client, if its credentials hold: a confidential client must send
    /// its secret (compared in constant time), a public one must not
    /// pretend to have one.
    pub async fn authenticate_client(&self, auth: &ClientAuth) -> Result<ClientRecord, OidcError> {
        let client = self.known_client(&auth.client_id).await?;
        let ok = match (&client.secret_hash, &auth.secret) {
            (Some(hash), Some(given)) => secret_matches(hash, given),
            (None, None) => true,
            _ => false,
        };
        if ok { Ok(client) } else { Err(OidcError::InvalidClient) }
    }

    pub async fn token(
        &self,
        twostep: &Twostep,
        ring: &Keyring,
        auth: &ClientAuth,
        p: &TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OidcError> {
        let result = self.token_inner(twostep, ring, auth, p, ctx).await;
        if let Err(e) = &result {
            self.audit_refusal(twostep, None, &auth.client_id, e, ctx).await;
        }
        result
    }

    async fn token_inner(
        &self,
        twostep: &Twostep,
        ring: &Keyring,
        auth: &ClientAuth,
        p: &TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OidcError> {
        let client = self.authenticate_client(auth).await?;
        match p.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(twostep, ring, &client, p, ctx).await,
            Some("refresh_token") => self.refresh(twostep, ring, &client, p, ctx).await,
            Some(_) => Err(OidcError::UnsupportedGrantType),
            None => Err(OidcError::InvalidRequest("grant_type is required".into())),
        }
    }

    async fn exchange_code(
        &self,
        twostep: &Twostep,
        ring: &Keyring,
        client: &ClientRecord,
        p: &TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OidcError> {
        let redeemed = self.redeem_code(client, p).await;
        let (grant, hash) = self.audit_revoked(twostep, redeemed, ctx).await?;
        self.issue(twostep, ring, client, &grant, &grant.scope.clone(), Spend::Code(&hash), ctx).await
    }

    async fn refresh(
        &self,
        twostep: &Twostep,
        ring: &Keyring,
        client: &ClientRecord,
        p: &TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OidcError> {
        let redeemed = self.redeem_refresh(client, p).await;
        let (grant, scope, hash) = self.audit_revoked(twostep, redeemed, ctx).await?;
        self.issue(twostep, ring, client, &grant, &scope, Spend::Refresh(&hash), ctx).await
    }

    async fn audit_revoked<T>(
        &self,
        twostep: &Twostep,
        r: Result<T, Spent>,
        ctx: &RequestContext,
    ) -> Result<T, OidcError> {
        match r {
            Ok(v) => Ok(v),
            Err(Spent { error, revoked: Some((g, why)) }) => {
                let details = format!("client {}; {why}", g.client_id);
                let event = AuditEvent::user(AuditKind::OidcGrantRevoked, &g.account_id).failed().details(details);
                twostep.audit(event, ctx).await;
                Err(error)
            }
            Err(Spent { error, revoked: None }) => Err(error),
        }
    }

    /// Checks a code presented by `client`: its grant and the code's hash,
    /// for `store_tokens` to spend. A code spent already is a replay, and
    /// revokes its grant (whoever holds the code may hold the tokens too,
    /// RFC 6749 §4.1.2). A wrong verifier or URI leaves the code unspent.
    pub async fn redeem_code(&self, client: &ClientRecord, p: &TokenParams) -> Result<(GrantRecord, String), Spent> {
        let code = p.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 256);
        let Some(code) = code else { return Err(OidcError::InvalidRequest("code is required".into()).into()) };
        let hash = sha256_hex(code);
        let unknown = || Spent::from(OidcError::InvalidGrant("the code is unknown or expired".into()));
        let Some(record) = self.store.code(&hash).await.map_err(OidcError::from)? else { return Err(unknown()) };
        if record.client_id != client.id {
            return Err(OidcError::InvalidGrant("the code was issued to another client".into()).into());
        }
        if record.consumed_at.is_some() {
            let revoked = self.revoke_grant(&record.grant_id, "authorization code replayed").await?;
            return Err(Spent { error: OidcError::InvalidGrant("the code was used already".into()), revoked });
        }
        if record.expires_at <= self.clock.now() {
            return Err(unknown());
        }
        if p.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(OidcError::InvalidGrant("redirect_uri differs from the authorization request".into()).into());
        }
        if !verifier_matches(p.code_verifier.as_deref().unwrap_or_default(), &record.code_challenge) {
            return Err(OidcError::InvalidGrant("the PKCE code_verifier does not match".into()).into());
        }
        Ok((self.live_grant(&record.grant_id).await?, hash))
    }

    /// Checks a refresh token presented by `client`: its grant, the scope
    /// the new tokens get and the token's hash. A token rotated already was
    /// reused: one of its two holders is a thief and we cannot tell which,
    /// so the family ends.
    pub async fn redeem_refresh(
        &self,
        client: &ClientRecord,
        p: &TokenParams,
    ) -> Result<(GrantRecord, String, String), Spent> {
        let given = p.refresh_token.as_deref().filter(|t| !t.is_empty() && t.len() <= 256);
        let Some(given) = given else {
            return Err(OidcError::InvalidRequest("refresh_token is required".into()).into());
        };
        let hash = sha256_hex(given);
        let unknown =
            || Spent::from(OidcError::InvalidGrant("the refresh token is unknown, expired or revoked".into()));
        let token = self.store.token(&hash).await.map_err(OidcError::from)?;
        let Some(old) = token.filter(|t| t.kind == TokenKind::Refresh) else { return Err(unknown()) };
        if old.client_id != client.id {
            return Err(OidcError::InvalidGrant("the refresh token was issued to another client".into()).into());
        }
        if old.used_at.is_some() {
            let revoked = self.revoke_grant(&old.grant_id, "refresh token reused").await?;
            return Err(Spent { error: OidcError::InvalidGrant("the refresh token was used already".into()), revoked });
        }
        if old.expires_at <= self.clock.now() {
            return Err(unknown());
        }
        let grant = self.live_grant(&old.grant_id).await?;
        // A narrower scope may be asked for, never a wider one (RFC 6749 §6).
        let scope = match p.scope.as_deref() {
            Some(s) if !s.trim().is_empty() => {
                if !s.split_ascii_whitespace().all(|x| has_scope(&old.scope, x)) {
                    return Err(OidcError::InvalidScope("wider than the original grant".into()).into());
                }
                rules::granted_scope(s).ok_or_else(|| OidcError::InvalidScope("must include openid".into()))?
            }
            _ => old.scope.clone(),
        };
        Ok((grant, scope, hash))
    }

    async fn live_grant(&self, id: &str) -> Result<GrantRecord, Spent> {
        match self.store.grant(id).await.map_err(OidcError::from)? {
            Some(g) if g.is_live() => Ok(g),
            Some(g) if g.revoked_at.is_none() => {
                // The session ended since: the grant ends for good, audited.
                let revoked = self.revoke_grant(&g.id, "the sign-in it came from ended").await?;
                Err(Spent { error: OidcError::InvalidGrant("the sign-in behind this grant has ended".into()), revoked })
            }
            _ => Err(OidcError::InvalidGrant("the grant was revoked".into()).into()),
        }
    }

    /// Revokes a grant; the grant, when this call revoked it.
    async fn revoke_grant(
        &self,
        id: &str,
        why: &'static str,
    ) -> Result<Option<(GrantRecord, &'static str)>, OidcError> {
        let grant = self.store.grant(id).await?;
        if self.store.revoke_grant(id, self.clock.now()).await? { Ok(grant.map(|g| (g, why))) } else { Ok(None) }
    }

    /// Spends `spend` and stores a new access token (and refresh token,
    /// with `offline_access`) under the grant, in one transaction. Losing
    /// the spend to a concurrent request is a replay like any other.
    pub async fn store_tokens(
        &self,
        client: &ClientRecord,
        grant: &GrantRecord,
        scope: &str,
        spend: Spend<'_>,
    ) -> Result<(String, Option<String>), Spent> {
        let now = self.clock.now();
        let access = self.random();
        let refresh = has_scope(scope, "offline_access").then(|| self.random());
        let record = |hash: String, kind, secs| TokenRecord {
            hash,
            kind,
            grant_id: grant.id.clone(),
            client_id: client.id.clone(),
            account_id: grant.account_id.clone(),
            scope: scope.to_owned(),
            created_at: now,
            expires_at: now.plus_secs(secs),
            used_at: None,
        };
        let mut records = vec![record(sha256_hex(&access), TokenKind::Access, ACCESS_TOKEN_SECS)];
        if let Some(r) = &refresh {
            records.push(record(sha256_hex(r), TokenKind::Refresh, REFRESH_TOKEN_SECS));
        }
        if self.store.issue_tokens(&grant.id, spend, now, &records).await.map_err(OidcError::from)? {
            return Ok((access, refresh));
        }
        let live = self.store.grant(&grant.id).await.map_err(OidcError::from)?.is_some_and(|g| g.is_live());
        if !live {
            return Err(OidcError::InvalidGrant("the grant was revoked".into()).into());
        }
        let (why, what) = match spend {
            Spend::Code(_) => ("authorization code replayed", "the code was used already"),
            Spend::Refresh(_) => ("refresh token reused", "the refresh token was used already"),
        };
        let revoked = self.revoke_grant(&grant.id, why).await?;
        Err(Spent { error: OidcError::InvalidGrant(what.into()), revoked })
    }

    #[expect(clippy::too_many_arguments, reason = "one issuance, for both grant types")]
    async fn issue(
        &self,
        twostep: &Twostep,
        ring: &Keyring,
        client: &ClientRecord,
        grant: &GrantRecord,
        scope: &str,
        spend: Spend<'_>,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OidcError> {
        let account = twostep
            .account(&grant.account_id)
            .await
            .map_err(|_| OidcError::InvalidGrant("the account is gone".into()))?;
        if account.disabled_at.is_some() {
            return Err(OidcError::InvalidGrant("the account is disabled".into()));
        }
        let stored = self.store_tokens(client, grant, scope, spend).await;
        let (access, refresh) = self.audit_revoked(twostep, stored, ctx).await?;
        let now = self.clock.now();
        let first = matches!(spend, Spend::Code(_));
        let alg = Alg::parse(&client.id_token_alg).unwrap_or(Alg::Rs256);
        let sub = self.subject(&grant.account_id).await?;
        let with_email = has_scope(scope, "email");
        let claims = IdClaims {
            iss: self.issuer.clone(),
            sub,
            aud: client.id.clone(),
            azp: client.id.clone(),
            exp: now.plus_secs(ID_TOKEN_SECS).secs(),
            iat: now.secs(),
            auth_time: grant.auth_time.secs(),
            nonce: if first { grant.nonce.clone() } else { None },
            acr: grant.acr.clone(),
            amr: grant.amr.split_ascii_whitespace().map(str::to_owned).collect(),
            at_hash: Some(half_hash(&access)),
            email: with_email.then(|| account.email.to_string()),
            email_verified: with_email.then_some(account.email_verified_at.is_some()),
            groups: has_scope(scope, "groups")
                .then(|| grant.groups.split_ascii_whitespace().map(str::to_owned).collect()),
        };
        let id_token = self.sign(alg, &claims, ring).await?;
        let what = if first { "code" } else { "refresh" };
        let details = format!("client {}; {what}; acr {}", client.id, grant.acr);
        twostep.audit(AuditEvent::user(AuditKind::OidcTokenIssued, &grant.account_id).details(details), ctx).await;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_SECS,
            scope: scope.to_owned(),
            id_token,
            refresh_token: refresh,
        })
    }

    /// The account's `sub`: random, made on first use, never the e-mail.
    pub async fn subject(&self, account: &crate::ids::AccountId) -> Result<String, OidcError> {
        Ok(self.store.subject(account, &self.random()).await?)
    }

    /// The userinfo claims for a live access token.
    pub async fn userinfo(&self, twostep: &Twostep, access_token: &str) -> Result<serde_json::Value, OidcError> {
        let live = self.store.live_token(&sha256_hex(access_token), self.clock.now()).await?;
        let Some(live) = live.filter(|l| l.token.kind == TokenKind::Access) else {
            return Err(OidcError::InvalidToken);
        };
        let account = twostep.account(&live.token.account_id).await.map_err(|_| OidcError::InvalidToken)?;
        if account.disabled_at.is_some() {
            return Err(OidcError::InvalidToken);
        }
        let mut claims = serde_json::json!({ "sub": self.subject(&account.id).await? });
        if has_scope(&live.token.scope, "email") {
            claims["email"] = account.email.to_string().into();
            claims["email_verified"] = account.email_verified_at.is_some().into();
        }
        if has_scope(&live.token.scope, "groups") {
            claims["groups"] = live.grant.groups.split_ascii_whitespace().collect::<Vec<_>>().into();
        }
        Ok(claims)
    }

    /// RFC 7662: active only for a live token of this client.
    pub async fn introspect(&self, auth: &ClientAuth, token: &str) -> Result<serde_json::Value, OidcError> {
        let client = self.authenticate_client(auth).await?;
        let live = self.store.live_token(&sha256_hex(token), self.clock.now()).await?;
        let Some(live) = live.filter(|l| l.token.client_id == client.id && l.token.used_at.is_none()) else {
            return Ok(serde_json::json!({ "active": false }));
        };
        let t = &live.token;
        Ok(serde_json::json!({
            "active": true,
            "scope": t.scope,
            "client_id": t.client_id,
            "sub": self.subject(&t.account_id).await?,
            "exp": t.expires_at.secs(),
            "iat": t.created_at.secs(),
            "iss": self.issuer,
            "aud": t.client_id,
            "token_type": if t.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
        }))
    }

    /// RFC 7009: a refresh token ends its whole grant, an access token
    /// itself; unknown tokens and other clients' tokens are ignored
    /// (the answer is the same, so it reveals nothing).
    pub async fn revoke(
        &self,
        twostep: &Twostep,
        auth: &ClientAuth,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<(), OidcError> {
        let client = self.authenticate_client(auth).await?;
        let Some(t) = self.store.token(&sha256_hex(token)).await? else { return Ok(()) };
        if t.client_id != client.id {
            return Ok(());
        }
        match t.kind {
            TokenKind::Refresh => {
                let revoked = self.revoke_grant(&t.grant_id, "revoked by the client").await?;
                // The answer is 200 whatever happened; only the revocation is audited.
                let spent: Result<(), Spent> = Err(Spent { error: OidcError::InvalidToken, revoked });
                let _ = self.audit_revoked(twostep, spent, ctx).await;
                Ok(())
            }
            TokenKind::Access => {
                self.store.delete_token(&t.hash).await?;
                Ok(())
            }
        }
    }

    /// An `id_token_hint` we signed: the client it was issued to and the
    /// account (by `sub`). `None` for anything else.
    pub async fn logout_hint(&self, hint: &str) -> Result<Option<(ClientRecord, crate::ids::AccountId)>, OidcError> {
        let Some(claims) = self.verify_own::<IdClaims>(hint).await? else { return Ok(None) };
        let Some(client) = self.store.client(&claims.aud).await? else { return Ok(None) };
        let Some(account) = self.store.account_of_subject(&claims.sub).await? else { return Ok(None) };
        Ok(Some((client, account)))
    }

    pub async fn client_by_id(&self, id: &str) -> Result<Option<ClientRecord>, OidcError> {
        Ok(self.store.client(id).await?)
    }
}
