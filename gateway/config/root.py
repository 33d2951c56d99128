"""The whole configuration of one building gateway."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from gateway.config.api import ApiConfig
from gateway.config.base import Section
from gateway.config.cameras import CamerasConfig
from gateway.config.modbus import ModbusConfig
from gateway.config.mqtt import MqttConfig
from gateway.config.rules import RulesConfig
from gateway.config.storage import StorageConfig
from gateway.config.upstream import UpstreamConfig

ID_PATTERN = r"^[a-z0-9-]{1,32}$"


class BuildingConfig(Section):
    id: str = Field(pattern=ID_PATTERN)
    """Building id used in topics and upstream tags, e.g. `b07`."""
    name: str = ""
    """Human-readable name shown on the cockpit."""
    timezone: str = "Asia/Shanghai"
    """IANA time zone of the building: rule schedules and the cockpit use it."""
    floors: int = Field(1, ge=1, le=200)
    """Number of floors."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. Asia/Shanghai)") from exc
        return v


class PrivacyConfig(Section):
    card_key: SecretStr = Field(min_length=16)
    """Key for card-number pseudonyms (HMAC); at least 16 characters: `${ENV}` or `!file path`."""


class LogConfig(Section):
    format: Literal["json", "console"] = "console"
    """`json` for one JSON object per line (journald, log shippers), `console` for people."""
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe level logged."""


class GatewayConfig(Section):
    building: BuildingConfig
    """Which building this gateway serves."""
    privacy: PrivacyConfig
    """Keys protecting personal data."""
    log: LogConfig = LogConfig()
    """Logging."""
    storage: StorageConfig = StorageConfig()
    """The embedded store."""
    mqtt: MqttConfig = MqttConfig()
    """Access gates and self-service terminals over MQTT."""
    modbus: ModbusConfig = ModbusConfig()
    """Room power meters and floor safety modules over Modbus TCP."""
    cameras: CamerasConfig = CamerasConfig()
    """Cameras analysed on the box."""
    rules: RulesConfig = RulesConfig()
    """The early-warning rules and residents."""
    api: ApiConfig = ApiConfig()
    """The API and the operations cockpit."""
    upstream: UpstreamConfig = UpstreamConfig()
    """Forwarding to the campus tier."""

    def enabled_sections(self) -> list[str]:
        """Names of the sections switched on (those with an `enabled` flag set)."""
        return [
            name
            for name in type(self).model_fields
            if getattr(getattr(self, name), "enabled", False) is True
        ]
