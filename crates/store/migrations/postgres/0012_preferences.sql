-- The method an account wants asked first at sign-in (issue 20). Keep in
-- step with ../sqlite/0012_preferences.sql. A row only when one is chosen.
CREATE TABLE method_preferences (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
