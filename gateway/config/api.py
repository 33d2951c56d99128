"""The `api:` section (placeholder: owned by the cockpit work)."""

from __future__ import annotations

from gateway.config.base import Section


class ApiConfig(Section):
    enabled: bool = False
    """Whether the API and cockpit are served."""
