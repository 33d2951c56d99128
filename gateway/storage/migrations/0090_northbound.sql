-- Northbound MQTT to the campus broker: messages waiting for the broker's PUBACK, in id order.
-- `kind`: status | kpi | reading | result (only readings are shed when the outbox is full).
CREATE TABLE north_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX north_outbox_kind ON north_outbox (kind, id);
