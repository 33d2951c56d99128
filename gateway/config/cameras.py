"""The `cameras:` section (placeholder: owned by the camera work)."""

from __future__ import annotations

from gateway.config.base import Section


class CamerasConfig(Section):
    enabled: bool = False
    """Whether camera analysis runs."""
