-- Alerts raised from a camera's readings (crowding, tamper) find their snapshot by camera and time.
CREATE INDEX camera_snapshots_device_ts ON camera_snapshots (device, ts_ms);
