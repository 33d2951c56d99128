"""Campus tier settings: the northbound MQTT copy of a building (`upstream.northbound`) and
the campus view (`campus-edge campus --config campus.yaml`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from gateway.config.base import Section
from gateway.config.mqtt import BrokerConfig

NAME = r"^[a-z0-9._-]{1,40}$"


class NorthboundConfig(Section):
    enabled: bool = False
    """Whether device status, KPIs (and optionally readings) are published to the campus
    broker, and acknowledge/resolve commands from the campus view are accepted."""
    broker: BrokerConfig = BrokerConfig(client_id="campus-edge-north")
    """The campus broker; use a client id unique on it (e.g. `b07-north`)."""
    status: bool = True
    """Publish each device's status when it changes (online/offline, mode), retained."""
    kpis: bool = True
    """Publish the cockpit figures (computed by the API section when it is enabled), retained."""
    kpi_interval_s: float = Field(60.0, gt=0)
    """Least interval between two KPI publications (newer figures replace waiting ones)."""
    alert_snapshot: bool = True
    """Publish the list of unresolved alerts (retained, `north/alerts`) at start and after each
    alert change, so a campus view that restarts knows them at once. The notifications
    themselves stay with the rule engine's notifier."""
    readings: bool = False
    """Also publish every reading (only if the campus has no time-series store)."""
    commands: bool = True
    """Accept acknowledge/resolve for this building's alerts from the campus view
    (`campus/{building}/cmd/alert/{id}/{action}`); the broker's ACL decides who may send them."""
    outbox_max_rows: int = Field(1_000_000, ge=100)
    """Bound of the northbound outbox; past it the oldest readings are dropped (never statuses
    or KPIs), counted in `northbound_shed_total`."""
    batch: int = Field(500, ge=1, le=10_000)
    """Outbox rows read and published per round (published pipelined, in order)."""
    poll_s: float = Field(1.0, gt=0, le=60)
    """How often an empty outbox is looked at again."""


class CampusUser(Section):
    name: str = Field(pattern=NAME)
    """User name, recorded as `campus:{name}` in the owning building's alert transitions."""
    token: SecretStr = Field(min_length=16)
    """Bearer token of this user (`Authorization: Bearer ...`); use `${ENV}` or `file:`."""
    role: str = Field("operator", pattern=r"^(viewer|operator)$")
    """`viewer` reads; `operator` may also acknowledge and resolve."""


class CampusViewConfig(Section):
    """The whole configuration of `campus-edge campus` (its own file, not a gateway's)."""

    broker: BrokerConfig = BrokerConfig(client_id="campus-view")
    """The campus broker the buildings' gateways publish to."""
    host: str = "127.0.0.1"
    """Address the campus view listens on."""
    port: int = Field(8090, ge=0, le=65535)
    """TCP port of the campus view (0: any free port)."""
    buildings: list[str] = Field(default_factory=list)
    """Buildings shown even before they publish anything (others appear when they do)."""
    users: list[CampusUser] = Field(default_factory=list)
    """Who may use the campus view."""
    keep_resolved: int = Field(500, ge=0)
    """Resolved alerts kept in memory per building (newest)."""
