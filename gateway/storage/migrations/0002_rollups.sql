-- 1-minute and 1-hour aggregates, maintained by the writer in the transaction of the readings.
-- last_ts_ms orders `vlast` (the value at the latest time) when buckets are merged.
-- Keyed time first, like reading_blocks: a transaction's upserts touch the pages of the
-- current minute / hour only; a series' chart is one key lookup per bucket.

CREATE TABLE rollup_1m (
    series_id INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    vmin REAL NOT NULL,
    vmax REAL NOT NULL,
    vsum REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    vlast REAL NOT NULL,
    PRIMARY KEY (bucket_ms, series_id)
) WITHOUT ROWID;

CREATE TABLE rollup_1h (
    series_id INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    vmin REAL NOT NULL,
    vmax REAL NOT NULL,
    vsum REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    vlast REAL NOT NULL,
    PRIMARY KEY (bucket_ms, series_id)
) WITHOUT ROWID;
