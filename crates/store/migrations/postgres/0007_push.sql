-- Push approval with companion devices (issue 9). Keep in step with
-- ../sqlite/0007_push.sql.

-- One-time pairing codes (security.md §2.9: ≥ 112 bits, ≤ 10 min, single
-- use). Only the code's SHA-256 is kept, like every bearer token.
CREATE TABLE push_pairings (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX push_pairings_account ON push_pairings(account_id);

-- A companion device is an authenticator of kind 'push' (listed, renamed
-- and removed like the others); this row holds what only devices have:
-- the public key its requests are signed with, and its Web Push
-- subscription, sealed because the subscription's auth secret and endpoint
-- are capabilities.
CREATE TABLE push_devices (
    authenticator_id TEXT PRIMARY KEY REFERENCES authenticators(id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    public_key       BYTEA NOT NULL,
    webpush_sealed   BYTEA,
    last_seen_at     BIGINT
);
CREATE INDEX push_devices_account ON push_devices(account_id);

-- Sign-in requests sent to the account's devices. status: pending,
-- approved, denied; "expired" is a pending row past expires_at. used_at is
-- set when an approval became a session (single use).
CREATE TABLE push_challenges (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    login_token  TEXT NOT NULL,
    number       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    device_id    TEXT,
    not_me       BIGINT NOT NULL DEFAULT 0,
    used_at      BIGINT,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    place        TEXT
);
CREATE INDEX push_challenges_account ON push_challenges(account_id, created_at);
