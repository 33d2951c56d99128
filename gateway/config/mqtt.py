"""The `mqtt:` section (placeholder: owned by the MQTT collector work)."""

from __future__ import annotations

from gateway.config.base import Section


class MqttConfig(Section):
    enabled: bool = False
    """Whether the MQTT collector runs."""
