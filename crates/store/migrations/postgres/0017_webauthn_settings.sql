-- An organisation's rule on synced passkeys (issue 16, item 6). Keep in
-- step with ../sqlite/0017_webauthn_settings.sql. When set, members may
-- register only device-bound keys: a backup-eligible credential may be
-- copied to devices the organisation never sees.
ALTER TABLE organizations ADD COLUMN refuse_synced_passkeys BIGINT NOT NULL DEFAULT 0;
