"""The `rules:` and `residents:` sections (placeholder: owned by the rule engine work)."""

from __future__ import annotations

from gateway.config.base import Section


class RulesConfig(Section):
    enabled: bool = True
    """Whether the rule engine runs."""
