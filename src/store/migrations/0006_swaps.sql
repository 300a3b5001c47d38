-- Swap requests of the rosters the professionals keep themselves (SPEC §15).
-- A request asks someone to take `requester`'s place on one shift
-- occurrence. States: open (waiting for a taker), pending (taken, waiting
-- for the bureau's approval), done (counts: the taker replaces the
-- requester), cancelled (by the requester before anyone took it). A
-- refused approval puts the request back to open.
CREATE TABLE swap_requests (
    id INTEGER PRIMARY KEY,
    roster TEXT NOT NULL,
    date TEXT NOT NULL,
    shift TEXT NOT NULL,
    requester TEXT NOT NULL,
    state TEXT NOT NULL,
    taker TEXT,
    created_at TEXT NOT NULL,
    taken_at TEXT,
    decided_at TEXT,
    decided_by TEXT,
    alerted_at TEXT
);
-- One live request per person and shift occurrence.
CREATE UNIQUE INDEX swap_requests_live ON swap_requests (roster, date, shift, requester)
    WHERE state IN ('open', 'pending');
CREATE INDEX swap_requests_state ON swap_requests (state);
