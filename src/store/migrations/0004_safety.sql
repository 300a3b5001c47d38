-- An exercise and a real event of the same scenario and key never merge:
-- the exercise flag is part of what identifies an unresolved event.
DROP INDEX events_unresolved_key;
CREATE UNIQUE INDEX events_unresolved_key
    ON events (scenario, dedup_key, exercise) WHERE state <> 'resolved';

-- A random secret per event, bound into every link minted for it: after a
-- restore of an older copy of the database, a new event that gets the
-- number of a lost one has another secret, so the lost event's links do
-- not open it. Empty for the events of before this migration (their links
-- keep working as they were signed).
ALTER TABLE events ADD COLUMN link_secret TEXT NOT NULL DEFAULT '';

-- Operators' sessions, kept server-side so that logging out, a password
-- change or an operator removed from the configuration ends them at once.
-- The cookie carries a random id; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    -- SHA-256 of the operator's password hash (or generated password) at
    -- login: when the configuration changes it, the session ends.
    credential TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_operator ON sessions (operator);
