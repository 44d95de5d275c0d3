-- Security keys and passkeys (issue 16). Keep in step with
-- ../postgres/0016_webauthn.sql.

-- A key is an authenticator of kind 'webauthn' (listed, renamed and removed
-- like the others); this row holds what only keys have. credential_id is
-- the authenticator's own id for the credential, unique across accounts
-- (SEC-58); credential is webauthn-rs's JSON of it: the public key, the
-- sign count and the flags, never a private key (there is none here).
CREATE TABLE webauthn_credentials (
    authenticator_id TEXT PRIMARY KEY REFERENCES authenticators(id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id    BLOB NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    credential       TEXT NOT NULL,
    sign_count       BIGINT NOT NULL,
    backup_eligible  BIGINT NOT NULL DEFAULT 0,
    backup_state     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webauthn_credentials_account ON webauthn_credentials(account_id);

-- Ceremonies in flight (SEC-57): the state webauthn-rs needs to finish one,
-- kept here rather than in memory so a ceremony begun on one instance
-- finishes on another. Taken with DELETE … RETURNING, so each is used once.
-- binding: the login token's or session's hash it belongs to ('' for a
-- registration or a passkey sign-in, found by their id). account_id is
-- NULL for a passkey sign-in: the key says whose it is.
CREATE TABLE webauthn_ceremonies (
    id          TEXT PRIMARY KEY,
    account_id  TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    binding     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_binding ON webauthn_ceremonies(purpose, binding);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
