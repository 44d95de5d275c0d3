-- twostep schema v1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql.
-- Times are Unix seconds (BIGINT); secrets are sealed BYTEAs or hashes.

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT,
    last_sign_in_at BIGINT
);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    password_at      BIGINT,
    second_factor_at BIGINT,
    ip               TEXT NOT NULL,
    user_agent       TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE login_tokens (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_tokens_account ON login_tokens(account_id);

CREATE TABLE totp_enrollments (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX totp_enrollments_account ON totp_enrollments(account_id);

CREATE TABLE authenticators (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    last_step     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX authenticators_account ON authenticators(account_id);

CREATE TABLE recovery_codes (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    lookup      BYTEA NOT NULL,
    code_sealed BYTEA NOT NULL,
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX recovery_codes_account ON recovery_codes(account_id);

-- No foreign key: the log outlives what it describes.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    account_id TEXT,
    actor      TEXT NOT NULL,
    factor_id  TEXT,
    success    BIGINT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    details    TEXT NOT NULL
);
CREATE INDEX audit_log_account ON audit_log(account_id, id);

-- Append-only (security.md §2.13).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
