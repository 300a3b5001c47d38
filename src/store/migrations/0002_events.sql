-- Installation-wide values (installation id for Message-IDs…).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A declared scenario. At most one unresolved event per (scenario, key).
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    scenario TEXT NOT NULL,
    dedup_key TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    level TEXT,
    note TEXT NOT NULL DEFAULT '',
    exercise INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'exhausted', 'resolved')),
    plan_id TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    plan_sha256 TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    acknowledged_at TEXT,
    exhausted_at TEXT,
    resolved_at TEXT,
    resolve_note TEXT,
    -- The escalation tier notified last, and how many times the chain restarted.
    tier INTEGER NOT NULL DEFAULT 0,
    round INTEGER NOT NULL DEFAULT 0,
    -- The persisted escalation timer: when the current tier times out.
    escalation_due_at TEXT
);
CREATE UNIQUE INDEX events_unresolved_key ON events (scenario, dedup_key) WHERE state <> 'resolved';
CREATE INDEX events_due ON events (escalation_due_at) WHERE escalation_due_at IS NOT NULL;

-- Everyone an event notified, numbered per event: response links carry
-- (event, number), never a name.
CREATE TABLE event_recipients (
    event_id INTEGER NOT NULL REFERENCES events (id),
    seq INTEGER NOT NULL,
    recipient_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (event_id, seq),
    UNIQUE (event_id, recipient_id)
);

-- Each notification wave: a broadcast, an escalation tier, the resolve
-- notice, the "exhausted" alert.
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    kind TEXT NOT NULL CHECK (kind IN ('broadcast', 'escalation', 'resolve', 'exhausted')),
    tier INTEGER,
    round INTEGER NOT NULL DEFAULT 0,
    level TEXT,
    audience TEXT NOT NULL,
    quorum INTEGER,
    timeout_secs INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX steps_event ON steps (event_id);

-- The outbox: one row per (recipient, channel, step), written in the same
-- transaction as the decision, before anything is sent.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    event_id INTEGER REFERENCES events (id),
    step_id INTEGER REFERENCES steps (id),
    recipient_id TEXT,
    recipient_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'retrying', 'failed', 'skipped', 'cancelled')),
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    payload TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX deliveries_due ON deliveries (channel, priority, next_attempt_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_state ON deliveries (state);

-- Every send attempt with its outcome.
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Every response (the latest per recipient counts; all are kept).
CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id),
    recipient_id TEXT NOT NULL,
    response TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX responses_event ON responses (event_id, recipient_id);
