"""This package's CLI commands (placeholder until implemented)."""

from __future__ import annotations

from gateway.commands import Commands


def register(commands: Commands) -> None:
    return None
