-- The factor summary, read on every GET /api/v1/me and sign-in step
-- (issue 21): its kinds and recovery parts answered from indexes alone. Keep in step with
-- ../postgres/0018_summary_indexes.sql.
--
-- Its kinds part groups an account's authenticators by kind, and its
-- recovery part counts the unused codes: with indexes on account_id alone
-- each matching row was then looked up in its table, ten of them for the
-- recovery codes, each a descent of a tree that at 1,000,000 accounts
-- holds 10,000,000 rows (docs/performance.md, eighth step).
CREATE INDEX authenticators_account_kind ON authenticators (account_id, kind);
-- Its prefix serves every lookup the old index did.
DROP INDEX authenticators_account;
-- Only the unused codes, so a used code leaves it; the listing and the
-- account's deletion keep recovery_codes_account.
CREATE INDEX recovery_codes_unused ON recovery_codes (account_id, used_at) WHERE used_at IS NULL;
