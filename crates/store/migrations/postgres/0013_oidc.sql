-- OpenID Connect provider (issue 17). Keep in step with
-- ../sqlite/0013_oidc.sql.

-- Relying parties registered by the operator. The secret is kept only as
-- its SHA-256 (NULL for a public client); URIs one per line.
CREATE TABLE oidc_clients (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    secret_hash         TEXT,
    redirect_uris       TEXT NOT NULL,
    post_logout_uris    TEXT NOT NULL DEFAULT '',
    require_two_factor  BIGINT NOT NULL DEFAULT 0,
    org_id              TEXT,
    skip_consent        BIGINT NOT NULL DEFAULT 0,
    id_token_alg        TEXT NOT NULL DEFAULT 'RS256',
    created_at          BIGINT NOT NULL
);

-- ID token signing keys; the private half sealed under the master key
-- (SealedColumn::OidcKey), the kid its RFC 7638 thumbprint.
CREATE TABLE oidc_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT
);

-- Each account's `sub`: random, never the e-mail.
CREATE TABLE oidc_subjects (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    sub        TEXT NOT NULL UNIQUE
);

CREATE TABLE oidc_consents (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);

-- One sign-in at a client: every code and token descends from a grant
-- and is revoked with it.
CREATE TABLE oidc_grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    nonce      TEXT,
    auth_time  BIGINT NOT NULL,
    acr        TEXT NOT NULL,
    amr        TEXT NOT NULL,
    groups_claim TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oidc_grants_account ON oidc_grants (account_id);

-- Codes and tokens by the SHA-256 of their value only.
CREATE TABLE oidc_codes (
    hash           TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);

CREATE TABLE oidc_tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);
