-- Organisation membership by invitation (issue 14). Keep in step with
-- ../sqlite/0008_invitations.sql.
--
-- An invitation is addressed to a normalised e-mail address, not to an
-- account: whether an account exists is not the inviter's business, and an
-- invitation to an address without one is kept for the account later made
-- with it. A row is pending until accepted, declined or revoked (each
-- deletes it; the audit log keeps the history) or until expires_at. One
-- invitation per organisation and address: inviting again renews it.

CREATE TABLE org_invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    invited_by  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    UNIQUE (org_id, email)
);
CREATE INDEX org_invitations_email ON org_invitations(email);
