"""Builds the MQTT collector from the configuration."""

from __future__ import annotations

from collectors.mqtt.collector import MqttCollector
from gateway.runtime import Component, Runtime


def build_components(runtime: Runtime) -> list[Component]:
    if not runtime.config.mqtt.enabled:
        return []
    return [MqttCollector(runtime)]
