-- The actions checklist of each event (SPEC §12): the action cards of the
-- levels it went through, added in the transaction that declares it or
-- changes its level, numbered 1, 2, … in the order they were added. A card
-- already on the list (same title) is not added twice.
CREATE TABLE event_actions (
    event_id INTEGER NOT NULL REFERENCES events(id),
    n INTEGER NOT NULL,
    title TEXT NOT NULL,
    who TEXT,
    detail TEXT,
    added_at TEXT NOT NULL,
    due_at TEXT,
    done_at TEXT,
    done_by TEXT,
    note TEXT,
    PRIMARY KEY (event_id, n)
);
