"""The `upstream:` section: forwarding the store's outbox to the campus time-series server."""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr, model_validator

from gateway.config.base import Section
from gateway.config.campus import NorthboundConfig


class UpstreamConfig(Section):
    enabled: bool = False
    """Whether anything is forwarded upstream."""
    timeseries: bool = True
    """Whether the outbox is forwarded to the time-series server at `url` (false: only the
    northbound MQTT runs)."""
    url: HttpUrl = HttpUrl("http://127.0.0.1:8428")
    """Base URL of a server speaking the InfluxDB v2 write API (InfluxDB 2/3, VictoriaMetrics)."""
    org: str = "campus"
    """InfluxDB organisation (VictoriaMetrics ignores it)."""
    bucket: str = "campus"
    """InfluxDB bucket (VictoriaMetrics ignores it)."""
    token: SecretStr = SecretStr("")
    """API token (`Authorization: Token ...`); empty for none. Use `${ENV}` or `file:`."""
    batch_points: int = Field(5000, ge=1, le=100_000)
    """Most outbox entries sent in one write request."""
    gzip: bool = True
    """Compress write requests (gzip)."""
    timeout_s: float = Field(10.0, gt=0, le=300)
    """How long one write request may take before it counts as failed and is retried."""
    backoff_initial_s: float = Field(0.5, gt=0)
    """First retry delay after a failed write; doubles per failure, with full jitter."""
    backoff_max_s: float = Field(30.0, gt=0)
    """Cap on the retry delay."""
    idle_poll_s: float = Field(1.0, gt=0, le=60)
    """How often an empty outbox is looked at again."""
    high_water: int = Field(2_000_000, ge=1)
    """Backlog (outbox entries) above which the sink reports degraded health and raises the
    `upstream.backlog` alert; the store's own bound on the outbox must be higher."""
    low_water: int | None = Field(None, ge=0)
    """Backlog below which the alert clears (default: 80 % of `high_water`)."""
    backlog_check_s: float = Field(10.0, gt=0)
    """How often the backlog is counted for metrics and the high-water check."""
    max_rejected_per_batch: int = Field(16, ge=0)
    """More lines of one batch rejected as malformed than this means a misconfigured server,
    not bad data: the batch is kept and retried instead of dead-lettered."""
    max_line_bytes: int = Field(65_536, ge=256)
    """Longest line-protocol line sent; longer ones go to dead letters (the server's own limit,
    e.g. VictoriaMetrics' `-influx.maxLineSize`, must not be lower)."""
    event_string_fields: bool = False
    """Send string data of events as string fields: InfluxDB keeps them; VictoriaMetrics stores
    them as 0, so leave this off for VictoriaMetrics."""
    event_fields_exclude: tuple[str, ...] = ("card", "cardNo", "card_pseudonym", "person", "name")
    """Event data keys never forwarded (personal data stays in the building)."""
    location_tags: bool = True
    """Tag points with the device's floor and room from the catalog where known."""
    northbound: NorthboundConfig = NorthboundConfig()
    """Status, KPIs and commands over MQTT to the campus broker (`gateway/sinks/northbound.py`)."""

    @model_validator(mode="after")
    def _check(self) -> UpstreamConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        if self.low_water is not None and self.low_water >= self.high_water:
            raise ValueError("low_water must be below high_water")
        return self

    @property
    def effective_low_water(self) -> int:
        return self.low_water if self.low_water is not None else self.high_water * 4 // 5
