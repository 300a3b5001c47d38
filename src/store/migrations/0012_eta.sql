-- Responses with an arrival delay and a comment (SPEC §12): the delay in
-- minutes (0–1440) counted from the answer's own time, and a comment of at
-- most 500 characters; both optional, both kept with each answer (the
-- latest answer of a person counts, with its own delay and comment).
ALTER TABLE responses ADD COLUMN eta_minutes INTEGER;
ALTER TABLE responses ADD COLUMN comment TEXT;

-- Each "relancer les non-répondants" of an event: who asked, when, and how
-- many people it re-notified. The deliveries of a relance belong to the
-- event without a step (steps are the plan's waves: broadcasts, tiers).
CREATE TABLE event_reminds (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    people INTEGER NOT NULL,
    deliveries INTEGER NOT NULL
);
CREATE INDEX event_reminds_event ON event_reminds (event_id);
