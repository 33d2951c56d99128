"""This package's CLI commands: `campus-edge simulate modbus`."""

from __future__ import annotations

from gateway.commands import Commands
from simulators.modbus.cli import add_parser


def register(commands: Commands) -> None:
    add_parser(commands.simulate)
