-- Codes by SMS, voice and e-mail; the delivery outbox (issue 5). Keep in
-- step with ../postgres/0003_delivery.sql.

ALTER TABLE accounts ADD COLUMN email_verified_at BIGINT;

-- Every outgoing message, committed with the request that asks for it and
-- sent by a worker: a crash between "202 Accepted" and the provider loses
-- nothing. The payload is sealed (AES-256-GCM): it holds codes and links.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    account_id      TEXT,
    channel         TEXT NOT NULL,
    payload_sealed  BLOB NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    locked_until    BIGINT,
    provider        TEXT,
    provider_id     TEXT,
    last_error      TEXT,
    finished_at     BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_created ON outbox(created_at);

-- One-time codes sent by SMS, voice or e-mail: only a keyed hash is kept
-- (security.md §2.2). At most one live code per account and purpose.
CREATE TABLE oob_codes (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    channel     TEXT NOT NULL,
    destination TEXT NOT NULL,
    binding     TEXT NOT NULL,
    code_hash   BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    failures    BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX oob_codes_latest ON oob_codes(account_id, purpose);

-- Sends, for the resend cooldown and the hourly and daily caps (§2.8).
-- Kept apart from oob_codes because superseded codes are deleted.
CREATE TABLE oob_sends (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    binding     TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX oob_sends_account ON oob_sends(account_id, at);
CREATE INDEX oob_sends_destination ON oob_sends(destination, at);
CREATE INDEX oob_sends_binding ON oob_sends(binding, at);
