"""Built-in device profiles, shipped as YAML data files next to this module."""

from __future__ import annotations

import functools
from importlib import resources

import yaml

from gateway.config.modbus import ProfileSpec

BUILTIN = ("sdm120", "dds238", "safety-io")


def load_profile_text(text: str, name: str) -> ProfileSpec:
    data = yaml.safe_load(text)
    try:
        return ProfileSpec.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"profile {name!r} is invalid: {exc}") from exc


@functools.cache
def _builtin() -> tuple[tuple[str, ProfileSpec], ...]:
    root = resources.files(__name__)
    return tuple(
        (name, load_profile_text(root.joinpath(f"{name}.yaml").read_text("utf-8"), name))
        for name in BUILTIN
    )


def builtin_profiles() -> dict[str, ProfileSpec]:
    """The profiles of the device spec: `sdm120`, `dds238`, `safety-io`."""
    return dict(_builtin())
