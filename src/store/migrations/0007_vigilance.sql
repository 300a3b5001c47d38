-- Proposals made from a vigilance bulletin (SPEC §13): declare `scenario`
-- at `level` (action `declare`) or resolve its running event (action
-- `resolve`) because `phenomenon` is `colour` in `departement` according
-- to the bulletin of `update_time`. States: open (waiting for the bureau),
-- accepted, dismissed, declared (mode = "declare": done at once),
-- superseded (a later change replaced it before anyone decided).
CREATE TABLE vigilance_proposals (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    departement TEXT NOT NULL,
    phenomenon TEXT NOT NULL,
    colour TEXT NOT NULL,
    update_time TEXT NOT NULL,
    scenario TEXT NOT NULL,
    level TEXT,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    event_id INTEGER,
    decided_at TEXT,
    decided_by TEXT
);
CREATE INDEX vigilance_proposals_state ON vigilance_proposals(state);
