-- Master key rotation (issue 19, `twostep key rotate`). Keep in step with
-- ../sqlite/0011_keys.sql.

-- Secrets every instance must share and that used to be derived from the
-- master key (the Web Push VAPID key): a rotation seals them here first,
-- so they survive the key they were derived from.
CREATE TABLE server_secrets (
    name         TEXT PRIMARY KEY,
    value_sealed BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

-- One row per rotation, by the key it re-seals towards: where it got to
-- (column, last row id), so a killed rotation resumes there.
CREATE TABLE key_rotations (
    target      TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    column_name TEXT NOT NULL,
    cursor      TEXT NOT NULL,
    resealed    BIGINT NOT NULL DEFAULT 0
);
