-- Rule engine state (survives restarts), residents, and the alert notification outbox.

-- Latest snapshot of each rule's state (timers, windows, open episodes), JSON; `_presence` holds
-- resident presence. Written together with the alerts they produced.
CREATE TABLE rules_state (
    rule_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Where the engine is in its inputs: `event_rowid` (last event fed), `tick_ms` (last tick).
CREATE TABLE rules_checkpoint (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- Residents by card pseudonym (never the card number); the name is shown only to roles
-- allowed to see it, and every such read is audited.
CREATE TABLE residents (
    pseudonym TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    imported_ms INTEGER NOT NULL
);
CREATE INDEX residents_room ON residents (room);

-- Approved leave: covers an instant t when from_ms <= t <= to_ms.
CREATE TABLE resident_leave (
    pseudonym TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    imported_ms INTEGER NOT NULL,
    PRIMARY KEY (pseudonym, from_ms, to_ms)
);

-- Alert changes waiting to be delivered, per channel (`mqtt`, `webhook:<name>`), in id order.
CREATE TABLE alert_notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_notify_outbox_channel ON alert_notify_outbox (channel, id);
