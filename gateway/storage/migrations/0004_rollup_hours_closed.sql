-- 1-hour rollups are written when an hour closes, from its 1-minute rollups, instead of being
-- merged at every transaction (see `gateway.storage.rollups`). `hours_closed_ms` is the start
-- of the first hour not yet closed: rollup_1h is complete below it; at and above it the hours
-- are read from rollup_1m. Existing databases have every hour of rollup_1h maintained.

CREATE TABLE rollup_marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO rollup_marks (name, value)
SELECT 'hours_closed_ms', coalesce(max(bucket_ms) + 3600000, -9223372036854775808)
FROM rollup_1h;
