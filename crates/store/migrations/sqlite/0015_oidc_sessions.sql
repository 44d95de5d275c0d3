-- An app's sign-in ends with the twostep session it came from (issue 17):
-- signing out, revoking the session on the Security page, a password
-- reset or an administrator's reset delete the session, and the grant's
-- link turns NULL, which ends its codes and tokens. Rotation (SEC-52)
-- changes the session's id and the link follows it. Grants from before
-- this migration have no session and end here: their apps sign in again.
-- Keep in step with ../postgres/0015_oidc_sessions.sql.
ALTER TABLE oidc_grants ADD COLUMN session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL ON UPDATE CASCADE;
CREATE INDEX oidc_grants_session ON oidc_grants (session_id);
