-- Readings packed per series and minute (see gateway.storage.readings); replaces the
-- row-per-reading `readings` table and its `reading_blocks` index of 0001.

-- The log of readings not yet packed: one row per transaction and minute, the readings as
-- columns (little-endian int64 series ids and times, float64 values, uint8 qualities) in the
-- order stored. A minute's rows are deleted in the transaction that packs it.
CREATE TABLE reading_log (
    id INTEGER PRIMARY KEY,
    bucket_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    sid BLOB NOT NULL,
    ts BLOB NOT NULL,
    val BLOB NOT NULL,
    qual BLOB NOT NULL
);
CREATE INDEX reading_log_bucket ON reading_log (bucket_ms);

-- Packed minutes: one row per series and minute, one reading per time (canonical form, see
-- gateway.storage.columns): uint16 ms offsets in the minute, float64 values, uint8 qualities.
-- Keyed time first: packing a minute appends at the end of the B-tree.
CREATE TABLE reading_chunks (
    bucket_ms INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    offsets BLOB NOT NULL,
    val BLOB NOT NULL,
    qual BLOB NOT NULL,
    PRIMARY KEY (bucket_ms, series_id)
) WITHOUT ROWID;

-- The writer's durable marks; `readings_closed_before`: every minute before it is packed.
CREATE TABLE store_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- Readings stored before this migration are packed by the writer when it opens the store.
ALTER TABLE readings RENAME TO legacy_readings;
DROP TABLE reading_blocks;
