-- Administration (issue 6): the operator role. Keep in step with
-- ../postgres/0006_admin.sql.
--
-- No account is an administrator by default (SEC-10): the first one is
-- granted with `twostep admin grant EMAIL`.

ALTER TABLE accounts ADD COLUMN admin_since BIGINT;

-- The admin audit page filters by time and event.
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_kind ON audit_log(kind, id);
