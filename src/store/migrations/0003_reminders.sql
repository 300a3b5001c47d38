-- Each scheduled instant of each reminder job, fired or missed, once.
CREATE TABLE reminder_firings (
    job TEXT NOT NULL,
    instant TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('fired', 'missed')),
    recorded_at TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, instant)
);
