-- Camera alarm snapshots: one JPEG file per alert-worthy camera event, kept on the gateway.
-- The row links the file to its event; retention deletes both (storage.retention.snapshots_days).

CREATE TABLE camera_snapshots (
    event_id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL
);

CREATE INDEX camera_snapshots_ts ON camera_snapshots (ts_ms);
