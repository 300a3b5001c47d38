-- The last good vigilance map (SPEC §13), kept across restarts so that a
-- colour already acted on (proposed, dismissed, declared) is not acted on
-- again and an older bulletin is refused: one row, the bulletin's
-- `update_time` and its colours as JSON
-- ([[departement, phenomenon, today, tomorrow], …]).
CREATE TABLE vigilance_last_map (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    update_time TEXT NOT NULL,
    colours TEXT NOT NULL
);
