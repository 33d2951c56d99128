-- A transaction's readings enter the outbox as one row (kind 2) holding `n` entries, their
-- columns packed as in reading_log; the first `done` entries of a row are acknowledged or
-- shed. Rows of kind 0 (one reading) and 1 (one event) hold one entry. See
-- gateway.storage.outbox.
ALTER TABLE outbox ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN sid BLOB;
ALTER TABLE outbox ADD COLUMN ts BLOB;
ALTER TABLE outbox ADD COLUMN val BLOB;
ALTER TABLE outbox ADD COLUMN qual BLOB;
