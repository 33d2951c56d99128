"""The `mqtt:` section: the broker, the gates and terminals, and vendor payload mappings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import Section

if TYPE_CHECKING:
    from gateway.model import DeviceInfo

DEVICE_ID = r"^[a-z0-9-]{1,32}$"
MessageKind = Literal["gate_event", "gate_status", "terminal_txn", "terminal_status"]


class TlsConfig(Section):
    ca_file: Path | None = None
    """CA bundle that signs the broker's certificate; the system store when unset."""
    cert_file: Path | None = None
    """Client certificate (PEM) for brokers that authenticate clients by certificate."""
    key_file: Path | None = None
    """Private key (PEM) of `cert_file`."""
    insecure: bool = False
    """Skip checking the broker's host name against its certificate (test benches only)."""


class BrokerConfig(Section):
    host: str = "127.0.0.1"
    """Broker host name or address (the building's Mosquitto listens on loopback)."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker TCP port (8883 is usual with TLS)."""
    client_id: str = Field("campus-edge", min_length=1, max_length=64)
    """Stable client id: the broker keeps this client's session and queued messages under it."""
    username: str | None = None
    """User name for broker authentication."""
    password: SecretStr | None = None
    """Password for broker authentication; use `${ENV}` or `file:`."""
    tls: TlsConfig | None = None
    """TLS settings; plain TCP when unset."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT version. 5 lets the gateway bound the broker's in-flight window (`receive_maximum`)
    and the session's lifetime itself; with 3.1.1 the broker's `max_inflight_messages` and
    `persistent_client_expiration` apply. Both ingest at about the same rate (the adapter
    frames PUBLISH and PUBACK of either itself; `bench/mqtt_ingest.py` measures both), so 5
    stays the default for the window and session life the gateway sets."""
    keepalive_s: int = Field(30, ge=5, le=3600)
    """MQTT keepalive: the broker declares the client gone after 1.5× this without traffic."""
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    """How long the broker keeps the session (and queues messages) while the gateway is away."""
    receive_maximum: int = Field(10_000, ge=1, le=65_535)
    """QoS 1 messages the broker may have in flight to the gateway before acknowledgements
    (MQTT 5). Keep it about twice `mqtt.batch_max`: one batch commits while the next arrives."""
    publish_window: int = Field(1_000, ge=1, le=65_000)
    """QoS 1 publishes of this client outstanding at once (paho fails past 65,535)."""
    reconnect_min_s: float = Field(0.2, gt=0)
    """First reconnect delay; doubles after each failure, with jitter."""
    reconnect_max_s: float = Field(30.0, gt=0)
    """Cap of the reconnect delay."""
    connect_timeout_s: float = Field(5.0, gt=0)
    """How long a TCP/TLS connection attempt may take."""


class MappingConfig(Section):
    """How one vendor's payload maps onto a built-in message kind, without code."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    """Name of the mapping, shown in dead letters and metrics."""
    kind: MessageKind
    """Which built-in message kind the payload becomes."""
    topic: str
    """Topic template with `{building}` and `{device}`, e.g. `hik/{device}/events`."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Target field -> dotted path in the payload (e.g. `AccessControllerEvent.serialNo`);
    `$` is the whole payload. Fields not listed are read from the same name."""
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Target field -> {raw value as text: target value}. Unmapped values are rejected unless
    a `"*"` entry gives the value for all others; a target of null leaves the field out."""
    ignore: dict[str, list[str]] = Field(default_factory=dict)
    """Target field -> raw values (as text) whose messages are acknowledged and not stored
    (a vendor's events that are no gate events, e.g. door-contact reports)."""
    defaults: dict[str, Any] = Field(default_factory=dict)
    """Target field -> value used when the payload lacks it."""
    devices: dict[str, str] = Field(default_factory=dict)
    """Topic device part -> gateway device id, where the vendor's names differ."""
    time_format: str = "rfc3339"
    """`rfc3339`, `epoch_s`, `epoch_ms`, or a `strptime` pattern (naive times are local)."""

    @field_validator("topic")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{device}" not in v:
            raise ValueError("the topic template must contain {device}")
        if any(c in v for c in "+#"):
            raise ValueError("write the topic as a template with {device}, not with wildcards")
        leftover = re.sub(r"\{(building|device)\}", "", v)
        if "{" in leftover or "}" in leftover:
            raise ValueError("only {building} and {device} may appear in a topic template")
        return v


class GateConfig(Section):
    id: str = Field(pattern=DEVICE_ID)
    """Gate id as in its topics (`campus/{building}/gate/{id}/...`)."""
    floor: int | None = None
    """Floor the gate is on (usually the ground floor, 1)."""
    zone: str | None = None
    """Zone name, e.g. `lobby`."""
    lane: str | None = None
    """Lane label shown on the cockpit, e.g. `east-in`."""


class TerminalConfig(Section):
    id: str = Field(pattern=DEVICE_ID)
    """Terminal id as in its topics (`campus/{building}/terminal/{id}/...`)."""
    floor: int | None = None
    """Floor the terminal is on."""
    zone: str | None = None
    """Zone name, e.g. `lobby`."""
    prints: bool = True
    """Whether the terminal has a printer (reports `paper`)."""


class MqttConfig(Section):
    enabled: bool = False
    """Whether the MQTT collector runs."""
    broker: BrokerConfig = BrokerConfig()
    """The broker the gates and terminals publish to."""
    builtin_profiles: bool = True
    """Read the spec's own topics and payloads (`campus/{building}/gate|terminal/...`)."""
    mappings: list[MappingConfig] = Field(default_factory=list)
    """Further vendors' payloads, mapped onto the built-in kinds."""
    gates: list[GateConfig] = Field(default_factory=list)
    """The building's access gates; messages from gates not listed are dead-lettered."""
    terminals: list[TerminalConfig] = Field(default_factory=list)
    """The building's self-service terminals; unlisted ones are dead-lettered."""
    max_payload_bytes: int = Field(64 * 1024, ge=256)
    """Larger payloads are dead-lettered."""
    max_clock_skew_s: int = Field(24 * 3600, ge=60)
    """Device times further than this from the gateway's clock are dead-lettered."""
    batch_max: int = Field(5_000, ge=1)
    """Most messages committed (and then acknowledged) together; the next batch is decoded
    and queued while one commits."""
    batch_linger_ms: int = Field(0, ge=0)
    """How long to wait for more messages before committing a partial batch."""

    @model_validator(mode="after")
    def _unique(self) -> MqttConfig:
        ids = [g.id for g in self.gates] + [t.id for t in self.terminals]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids declared twice: {', '.join(dupes)}")
        names = [m.name for m in self.mappings]
        if len(set(names)) != len(names):
            raise ValueError("mapping names must be unique")
        return self

    def catalog_entries(self) -> list[DeviceInfo]:
        from gateway.model import DeviceInfo, DeviceKind  # noqa: PLC0415 - config loads first

        out = [
            DeviceInfo(
                id=g.id,
                kind=DeviceKind.GATE,
                floor=g.floor,
                zone=g.zone,
                labels={"lane": g.lane} if g.lane else {},
            )
            for g in self.gates
        ]
        out.extend(
            DeviceInfo(
                id=t.id,
                kind=DeviceKind.TERMINAL,
                floor=t.floor,
                zone=t.zone,
                labels={"prints": "yes" if t.prints else "no"},
            )
            for t in self.terminals
        )
        return out
