"""The `upstream:` section (placeholder: owned by the upstream work)."""

from __future__ import annotations

from gateway.config.base import Section


class UpstreamConfig(Section):
    enabled: bool = False
    """Whether anything is forwarded upstream."""
