"""The `storage:` section: the embedded SQLite store and its retention."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.config.base import Section


class Retention(Section):
    raw_readings_days: int = Field(30, ge=1)
    """Days raw readings are kept."""
    rollup_1m_days: int = Field(365, ge=1)
    """Days 1-minute rollups are kept."""
    rollup_1h_days: int = Field(365 * 3, ge=1)
    """Days 1-hour rollups are kept."""
    events_days: int = Field(365, ge=1)
    """Days events, device status history and dead letters are kept."""
    alerts_days: int = Field(365, ge=1)
    """Days resolved alerts and their transitions are kept (unresolved alerts are never deleted)."""
    audit_days: int = Field(365 * 3, ge=1)
    """Days audit records are kept."""
    snapshots_days: int = Field(30, ge=1)
    """Days camera alarm snapshots are kept."""


class StorageConfig(Section):
    path: Path = Path("var/campus-edge.sqlite")
    """Database file; its directory is created if missing."""
    batch_max: int = Field(10_000, ge=1)
    """Most rows the writer puts in one transaction (a bigger single batch gets its own)."""
    batch_linger_ms: int = Field(20, ge=0)
    """Longest time the writer spends gathering commits that keep arriving into one
    transaction (it stops as soon as they stop; commits queued meanwhile join the next)."""
    late_readings_s: int = Field(30, ge=0, le=3600)
    """Seconds after a minute ends (by the gateway clock) that its readings are still logged as
    they come; then the minute is packed per series with its rollups. A reading for a packed
    minute is merged into it (correct, but it costs a rewrite of that series' minute)."""
    readers: int = Field(2, ge=1, le=16)
    """Reader connections (each in its own thread) serving queries while the writer writes."""
    retention: Retention = Retention()
    """How long each data class is kept."""
    retention_interval_s: int = Field(3600, ge=10)
    """How often retention runs."""
    outbox: bool = False
    """Append every reading and new event to the upstream outbox in the same transaction.
    Turn on together with `upstream`; off, forwarding costs nothing."""
    outbox_max_rows: int = Field(5_000_000, ge=1000)
    """Bound on the outbox, in entries (a reading or an event): past it the oldest readings
    (never events) are dropped from the outbox (they stay in the store), counted in
    `store_outbox_shed_total`."""
