-- The main courante (crisis log) of each event: append-only. Vigie writes
-- an entry in the transaction of each decision (declared, level changed,
-- tier notified, response…); operators add notes. Nothing is edited or
-- deleted: a correction is a new entry naming the one it corrects.
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    corrects INTEGER REFERENCES event_log (id),
    -- Optional details, JSON.
    data TEXT
);
CREATE INDEX event_log_event ON event_log (event_id, id);
-- The store itself refuses edits, not only the absence of a route.
CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'the main courante is append-only: entries are never edited');
END;
CREATE TRIGGER event_log_no_delete BEFORE DELETE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'the main courante is append-only: entries are never deleted');
END;

-- Bulletins published for the public page of an event.
CREATE TABLE event_bulletins (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX event_bulletins_event ON event_bulletins (event_id, id);

-- Lessons learned (RETEX) that operators write, kept in order.
CREATE TABLE event_lessons (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX event_lessons_event ON event_lessons (event_id, id);
