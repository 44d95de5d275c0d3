-- Abuse resistance and session security (issue 7). Keep in step with
-- ../sqlite/0002_abuse.sql.

-- Failure counters, security.md §2.5: one row per scope (an account's
-- password, a factor, a source address…), shared by every instance.
CREATE TABLE throttle_counters (
    scope           TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    window_start    BIGINT NOT NULL
);

-- "Remember this browser": the token is stored as its SHA-256 only.
CREATE TABLE remembered_browsers (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX remembered_browsers_account ON remembered_browsers(account_id);

-- Password reset links: single use, stored as SHA-256.
CREATE TABLE password_resets (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX password_resets_account ON password_resets(account_id);
