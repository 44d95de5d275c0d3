-- Issue 14: limits that hold under concurrency, and no phone number in the
-- clear (security.md §2.2, §2.8).
--
-- oob_codes.destination and oob_sends.destination now hold a keyed hash of
-- the number or address; a phone-verification code keeps its new number
-- sealed. Rows written before this held numbers in the clear: the pending
-- codes (10 minutes) and the send log (2 days) are dropped with them.
DELETE FROM oob_codes;
DELETE FROM oob_sends;
ALTER TABLE oob_codes ADD COLUMN destination_sealed BYTEA;
-- The hourly caps per calling code and on all SMS and voice sends.
ALTER TABLE oob_sends ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE oob_sends ADD COLUMN calling_code TEXT NOT NULL DEFAULT '';
CREATE INDEX oob_sends_channel ON oob_sends(channel, at);
CREATE INDEX oob_sends_calling_code ON oob_sends(calling_code, at);

-- Named rows a transaction locks to serialise a check and the write it
-- guards on every instance (a write: SQLite's write lock, a row lock on
-- PostgreSQL until commit).
CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    uses BIGINT NOT NULL DEFAULT 0
);
