-- Upstream outbox: append-only, drained in seq order by the upstream sender, deleted on ack.
-- kind 0: a reading (series_id, ts_ms, value, quality); kind 1: an event (event_rowid).

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind INTEGER NOT NULL,
    series_id INTEGER,
    ts_ms INTEGER,
    value REAL,
    quality INTEGER,
    event_rowid INTEGER
);
