"""MQTT commands: the gate/terminal simulator, record and replay."""

from __future__ import annotations

from gateway.commands import Commands


def register(commands: Commands) -> None:
    from simulators.gates.cli import register as register_gates  # noqa: PLC0415
    from simulators.recording.cli import register as register_recording  # noqa: PLC0415

    register_gates(commands)
    register_recording(commands)
