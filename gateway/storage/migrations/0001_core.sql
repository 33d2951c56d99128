-- Series, raw readings, events, device status, alerts, audit and dead letters.

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (device, metric)
);

-- Raw readings are appended (the cheapest insert SQLite has); each transaction writes them
-- grouped by series, so a series' readings of one minute in one transaction are one id range,
-- recorded in reading_blocks: the raw query reads those ranges, never scans the table.
-- No AUTOINCREMENT (it costs a quarter of the insert rate): an id is reused only once every
-- row above it is gone, and blocks go with their rows; the outbox copies readings.
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    quality INTEGER NOT NULL
);

-- Keyed time first: a transaction touches the few pages of the current minute, not one page
-- per series; a series' range is read with one key lookup per minute.
CREATE TABLE reading_blocks (
    bucket_ms INTEGER NOT NULL,  -- the minute of the readings in this block
    series_id INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (bucket_ms, series_id, first_id)
) WITHOUT ROWID;

-- rowid is the insertion order (AUTOINCREMENT: never reused, so cursors stay valid).
CREATE TABLE events (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    data TEXT
);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_device ON events (device, rowid);
CREATE INDEX events_kind ON events (kind, rowid);

CREATE TABLE status_history (
    seq INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    online INTEGER NOT NULL,
    mode TEXT,
    detail TEXT
);
CREATE INDEX status_history_device ON status_history (device, ts_ms);
CREATE INDEX status_history_ts ON status_history (ts_ms);

CREATE TABLE device_latest (
    device TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    online INTEGER NOT NULL,
    mode TEXT,
    detail TEXT
) WITHOUT ROWID;

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    receivers TEXT NOT NULL,
    tier INTEGER NOT NULL,
    assignee TEXT,
    ack_deadline_ms INTEGER,
    resolve_deadline_ms INTEGER,
    data TEXT
);
CREATE INDEX alerts_opened ON alerts (opened_ms);
CREATE INDEX alerts_state ON alerts (state, opened_ms);
CREATE INDEX alerts_rule ON alerts (rule, opened_ms);
CREATE INDEX alerts_updated ON alerts (updated_ms);

CREATE TABLE alert_transitions (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    note TEXT NOT NULL,
    data TEXT
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, seq);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_ts ON audit (ts_ms);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    device TEXT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_size INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX dead_letters_device ON dead_letters (device, id);
CREATE INDEX dead_letters_ts ON dead_letters (ts_ms);
