"""The `api:` section: the HTTP API and the operations cockpit."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Section


class LoginLimits(Section):
    max_failures: int = Field(5, ge=1)
    """Failed logins allowed per user name and per client address within `window_s`."""
    window_s: int = Field(300, ge=1)
    """Sliding window, in seconds, over which failed logins are counted."""


class ApiConfig(Section):
    enabled: bool = False
    """Whether the API and cockpit are served."""
    host: str = "127.0.0.1"
    """Address to listen on. Loopback by default; put a TLS reverse proxy in front to expose it."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port to listen on (0 picks a free one, for tests)."""
    session_ttl_s: int = Field(12 * 3600, ge=60)
    """How long a login session lasts, in seconds."""
    token_ttl_days: int = Field(365, ge=1)
    """Default lifetime, in days, of API tokens for integrators."""
    login: LoginLimits = LoginLimits()
    """Login rate limiting."""
    secure_cookies: bool = False
    """Mark the session cookie `Secure` (set it when the cockpit is served over HTTPS)."""
    stream_ring: int = Field(2000, ge=10)
    """Recent live-stream events kept so a reconnecting client can resume (`Last-Event-ID`)."""
    stream_keepalive_s: float = Field(15.0, gt=0)
    """Seconds between keep-alive comments on an idle live stream."""
    kpi_interval_s: float = Field(10.0, gt=0)
    """How often the KPIs are recomputed and pushed to the live stream."""
    power_metric: str = "power"
    """Meter metric (W) summed for the building's power now and today."""
    shutdown_timeout_s: float = Field(5.0, gt=0)
    """Seconds open requests get to finish when the gateway stops."""
