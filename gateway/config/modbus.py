"""The `modbus:` section (placeholder: owned by the Modbus collector work)."""

from __future__ import annotations

from gateway.config.base import Section


class ModbusConfig(Section):
    enabled: bool = False
    """Whether the Modbus collector runs."""
