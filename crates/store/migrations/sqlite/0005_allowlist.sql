-- Per-account IP allow-lists (issue 6, story P3). Keep in step with
-- ../postgres/0005_allowlist.sql.
--
-- `cidr` is the normalised text of an address or range (host bits cleared,
-- IPv4-mapped IPv6 written as IPv4), so the same range cannot be listed twice.
-- An account without rows is unrestricted.

CREATE TABLE ip_allowlist (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    cidr       TEXT NOT NULL,
    label      TEXT NOT NULL DEFAULT '',
    position   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, cidr)
);
