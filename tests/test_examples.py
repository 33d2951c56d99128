"""The annotated example building in deploy/examples/ is a valid configuration of what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.loader import ConfigError, build_catalog, load_config
from gateway.model import DeviceKind

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "building.yaml"


def test_example_building_is_the_realistic_building(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CAMPUS_EDGE_CARD_KEY", "UPSTREAM_TOKEN", "NORTH_PASSWORD", "DUTY_DESK_TOKEN"):
        monkeypatch.setenv(var, "example-secret-0123456789")
    config = load_config(EXAMPLE)
    catalog = build_catalog(config)
    count = {kind: len(list(catalog.of_kind(kind))) for kind in DeviceKind}
    assert config.building.floors == 6
    rooms = {d.room for d in catalog.of_kind(DeviceKind.METER) if d.room is not None}
    assert len(rooms) == 120
    assert count[DeviceKind.GATE] == 4
    assert sum(1 for g in config.mqtt.gates if g.id.endswith("-in")) == 2
    assert count[DeviceKind.TERMINAL] == 2
    assert count[DeviceKind.CAMERA] == 4
    assert count[DeviceKind.SAFETY_IO] == 6
    lanes = {(lane.gate, lane.camera) for lane in config.rules.lanes}
    assert {gate for gate, _ in lanes} == {g.id for g in config.mqtt.gates}
    assert {cam for _, cam in lanes} <= {c.id for c in config.cameras.cameras}


def test_example_building_names_its_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("UPSTREAM_TOKEN", "NORTH_PASSWORD", "DUTY_DESK_TOKEN"):
        monkeypatch.setenv(var, "example-secret-0123456789")
    monkeypatch.delenv("CAMPUS_EDGE_CARD_KEY", raising=False)
    with pytest.raises(
        ConfigError, match=r"building\.yaml:\d+: privacy\.card_key.*CAMPUS_EDGE_CARD_KEY"
    ):
        load_config(EXAMPLE)
