"""The `rules:` section: the early-warning rules, residents and alert notifications.

The built-in catalogue (`rules/catalogue.yaml`) is the default rule set; `overrides` changes a
catalogue rule per building (switch it off, re-parameterise, re-scope), `custom` adds rules
built from the same kinds.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, HttpUrl

from gateway.config.base import Section


class ScopeConfig(Section):
    """Which devices a rule looks at; every list given must match (empty lists match all)."""

    devices: list[str] = Field(default_factory=list)
    """Device ids."""
    kinds: list[str] = Field(default_factory=list)
    """Device kinds: gate, terminal, meter, safety_io, camera."""
    floors: list[int] = Field(default_factory=list)
    """Floor numbers."""
    rooms: list[str] = Field(default_factory=list)
    """Room numbers."""
    zones: list[str] = Field(default_factory=list)
    """Zone names."""


class RuleOverride(Section):
    """Per-building changes to a catalogue rule; unset fields keep the catalogue's value."""

    enabled: bool | None = None
    """Set false to switch the rule off."""
    severity: str | None = None
    """`info`, `warning` or `critical`."""
    receivers: list[str] | None = None
    """Receiver tiers in escalation order; roles in one tier are joined with `+`."""
    message: str | None = None
    """Message template (`str.format` fields from the rule's subject and input)."""
    self_resolve: bool | None = None
    """Whether the alert resolves itself when the condition clears."""
    scope: ScopeConfig | None = None
    """Devices the rule applies to."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Kind parameters; each key given replaces the catalogue's value for that key."""


class CustomRule(Section):
    """A building-specific rule made from one of the rule kinds."""

    id: str = Field(pattern=r"^[a-z0-9_.-]{1,64}$")
    """Stable rule id, e.g. `power.night_heater`."""
    kind: str
    """event, count, ratio, threshold, step, absence, status, correlation, roll_call, dwell."""
    title: str = ""
    """Short human title."""
    severity: str = "warning"
    """`info`, `warning` or `critical`."""
    receivers: list[str] = Field(default_factory=lambda: ["desk"])
    """Receiver tiers in escalation order."""
    message: str = "{rule} on {subject}"
    """Message template."""
    self_resolve: bool = False
    """Whether the alert resolves itself when the condition clears."""
    enabled: bool = True
    """Whether the rule runs."""
    scope: ScopeConfig = ScopeConfig()
    """Devices the rule applies to."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Kind parameters (see the catalogue for examples of each kind)."""


class LaneConfig(Section):
    """A lane camera watching a gate: its line crossings are checked against the gate's passes."""

    gate: str
    """Gate device id."""
    camera: str
    """Camera device id."""
    line: str | None = None
    """Name of the camera's counting line for this lane (all lines of the camera if unset)."""


class DeadlinesConfig(Section):
    """Acknowledge and resolve deadlines per severity, in seconds (null: none)."""

    ack_s: dict[str, int | None] = Field(
        default_factory=lambda: {"critical": 120, "warning": 600, "info": None}
    )
    """Seconds to acknowledge an alert of each severity."""
    resolve_s: dict[str, int | None] = Field(
        default_factory=lambda: {"critical": 1800, "warning": 86400, "info": None}
    )
    """Seconds to resolve an alert of each severity."""


class InputNamesConfig(Section):
    """How collector outputs are named; adjust here when a collector names things differently."""

    occupancy_prefix: str = "occupancy."
    """Metric prefix of camera zone occupancy readings; the rest of the name is the zone."""
    camera_tamper_kind: str = "camera.tamper"
    """Event kind of camera tamper reports."""
    line_crossing_kind: str = "camera.line_crossing"
    """Event kind of camera line crossings."""


class WebhookConfig(Section):
    """An HTTP endpoint receiving every alert change as a JSON POST."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    """Name used in the outbox and in metrics."""
    url: HttpUrl
    """Where to POST."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers (e.g. an authorization token; use `${ENV}`)."""
    timeout_s: float = Field(5.0, gt=0)
    """Request timeout."""
    min_severity: str = "info"
    """Only alerts at or above this severity are sent."""


class NotifyConfig(Section):
    """Northbound alert notifications, kept in a durable outbox until delivered."""

    mqtt: bool = True
    """Publish on `campus/{building}/alert/{rule}` through the MQTT transport."""
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    """HTTP endpoints."""
    retry_initial_s: float = Field(1.0, gt=0)
    """First retry delay after a failed delivery."""
    retry_max_s: float = Field(300.0, gt=0)
    """Longest retry delay (the delay doubles up to this)."""
    poll_s: float = Field(1.0, gt=0)
    """How often the outbox is checked when idle."""


class ResidentsConfig(Section):
    """Resident presence from gate passages."""

    leave_timezone_local: bool = True
    """Leave `from`/`to` without an offset are read in the building's time zone."""
    roster_reload_s: float = Field(10.0, gt=0)
    """How often the engine checks for a newly imported roster."""


class RulesConfig(Section):
    enabled: bool = True
    """Whether the rule engine runs."""
    catalogue: bool = True
    """Start from the built-in catalogue (false: only `custom` rules)."""
    overrides: dict[str, RuleOverride] = Field(default_factory=dict)
    """Changes to catalogue rules, by rule id."""
    custom: list[CustomRule] = Field(default_factory=list)
    """Additional rules."""
    lanes: list[LaneConfig] = Field(default_factory=list)
    """Lane cameras associated with gates (for `gate.camera_mismatch`)."""
    holidays: list[str] = Field(default_factory=list)
    """Dates (YYYY-MM-DD, local) when scheduled rules such as the roll call do not run."""
    heartbeat_s: dict[str, float | None] = Field(
        default_factory=lambda: {
            "gate": 30.0,
            "terminal": 30.0,
            "meter": None,
            "safety_io": None,
            "camera": 30.0,
        }
    )
    """Expected seconds between two signs of life, per device kind (for `device.offline`).
    `null`: no timer; the device is offline only when its collector says so. That is the
    default for polled Modbus devices, whose collector reports offline after failed polls and
    whose unchanging values are not reported on every poll."""
    deadlines: DeadlinesConfig = DeadlinesConfig()
    """Acknowledge and resolve deadlines."""
    inputs: InputNamesConfig = InputNamesConfig()
    """Names of collector outputs."""
    residents: ResidentsConfig = ResidentsConfig()
    """Residents and presence."""
    notify: NotifyConfig = NotifyConfig()
    """Alert notifications."""
    tick_s: float = Field(1.0, gt=0)
    """How often timers are checked."""
    snapshot_s: float = Field(2.0, gt=0)
    """How often changed rule state is persisted (also at every alert and at shutdown)."""
