-- Every level an event went through, written with the change itself (its
-- declaration, a re-declaration that changes it, a level change): what the
-- CAP export numbers its Alert and Updates by. Events of before this
-- migration have none: the export reads their steps instead.
CREATE TABLE event_levels (
    event_id INTEGER NOT NULL REFERENCES events(id),
    seq INTEGER NOT NULL,
    level TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (event_id, seq)
);
