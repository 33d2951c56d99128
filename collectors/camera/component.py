"""Builds this package's components from the configuration (placeholder until implemented)."""

from __future__ import annotations

from gateway.runtime import Component, Runtime


def build_components(runtime: Runtime) -> list[Component]:
    return []
