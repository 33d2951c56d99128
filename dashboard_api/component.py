"""Builds the API server component from the configuration."""

from __future__ import annotations

from gateway.runtime import Component, Runtime


def build_components(runtime: Runtime) -> list[Component]:
    if not runtime.config.api.enabled:
        return []
    from dashboard_api.server import ApiServer  # noqa: PLC0415 (FastAPI loads only when enabled)

    return [ApiServer(runtime)]
