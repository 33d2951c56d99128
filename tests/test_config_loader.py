"""The configuration loader: each kind of bad file gets a message naming file, line, key, fix."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest
from pydantic import Field

from gateway.config.base import Section
from gateway.config.loader import ConfigError, Problem, build_catalog, format_loc, load_config
from gateway.config.root import GatewayConfig
from gateway.model import DeviceInfo, DeviceKind

KEY = "0123456789abcdef-key"
GOOD = f"""\
building:
  id: b07
  name: Dorm 7
  timezone: Asia/Shanghai
  floors: 6
privacy:
  card_key: {KEY}
"""


def write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    for p in err.problems:
        assert str(path) in str(err)
        assert str(p) in str(err)
    return err.problems


def only(path: Path) -> Problem:
    found = problems_of(path)
    assert len(found) == 1, found
    return found[0]


def test_good_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.building.id == "b07"
    assert config.building.floors == 6
    assert config.privacy.card_key.get_secret_value() == KEY
    assert "rules" in config.enabled_sections()


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "building:\n  id: b07\n  - floors\nprivacy: {}\n")
    p = only(path)
    assert p.line == 3
    assert "YAML syntax error" in p.message
    assert f"{path}:3:" in str(p)


def test_unclosed_quote_is_a_syntax_error(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD + 'log:\n  level: "info\n'))
    assert "YAML syntax error" in p.message
    assert p.line is not None
    assert p.line >= 9


def test_not_a_mapping(tmp_path: Path) -> None:
    p = only(write(tmp_path, "- building\n- privacy\n"))
    assert p.line == 1
    assert "must be a mapping of sections" in p.message
    assert "found a list" in p.message


def test_empty_file(tmp_path: Path) -> None:
    p = only(write(tmp_path, "# nothing yet\n"))
    assert "found an empty file" in p.message


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  timezone:", "  tiemzone:"))
    p = only(path)
    assert (p.line, p.key) == (4, "building.tiemzone")
    assert "unknown key `tiemzone`" in p.message
    assert "did you mean `timezone`?" in p.message
    assert "known keys: floors, id, name, timezone" in p.message
    assert str(p).startswith(f"{path}:4: building.tiemzone: ")


def test_unknown_section(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD + "mqqt:\n  enabled: true\n"))
    assert (p.line, p.key) == (8, "mqqt")
    assert "did you mean `mqtt`?" in p.message


def test_missing_required_key(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace("  id: b07\n", "")))
    assert (p.line, p.key) == (1, "building.id")
    assert "required key `id` is missing: add it under building" in p.message


def test_missing_section(tmp_path: Path) -> None:
    p = only(write(tmp_path, "building:\n  id: b07\n"))
    assert p.key == "privacy"
    assert "required key `privacy` is missing" in p.message


def test_wrong_type(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace("floors: 6", "floors: six")))
    assert (p.line, p.key) == (5, "building.floors")
    assert "expected a valid integer" in p.message
    assert "found 'six'" in p.message


def test_section_given_as_a_scalar(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD + "storage: fast\n"))
    assert (p.line, p.key) == (8, "storage")
    assert "found 'fast'" in p.message


def test_value_out_of_range(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace("floors: 6", "floors: 0")))
    assert (p.line, p.key) == (5, "building.floors")
    assert "expected greater than or equal to 1; found 0" in p.message


def test_nested_value_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "storage:\n  retention:\n    raw_readings_days: 0\n")
    p = only(path)
    assert (p.line, p.key) == (10, "storage.retention.raw_readings_days")


def test_bad_enum(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD + "log:\n  format: xml\n"))
    assert (p.line, p.key) == (9, "log.format")
    assert "expected one of 'json' or 'console'; found 'xml'" in p.message


def test_bad_building_id_pattern(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace("id: b07", "id: Block 7")))
    assert (p.line, p.key) == (2, "building.id")
    assert "expected text matching ^[a-z0-9-]{1,32}$" in p.message
    assert "a-z, 0-9 and -" in p.message
    assert "found 'Block 7'" in p.message


def test_unknown_time_zone(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace("Asia/Shanghai", "Asia/Peking")))
    assert (p.line, p.key) == (4, "building.timezone")
    assert "unknown IANA time zone 'Asia/Peking'" in p.message


def test_short_secret_is_reported_but_not_shown(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace(KEY, "tooshort"))
    p = only(path)
    assert (p.line, p.key) == (7, "privacy.card_key")
    assert "at least 16 characters" in p.message
    assert "tooshort" not in str(p)


def test_env_variables_are_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_TEST_KEY", KEY)
    monkeypatch.setenv("CE_TEST_FLOORS", "12")
    monkeypatch.delenv("CE_TEST_UNSET", raising=False)
    text = (
        GOOD.replace(KEY, "${CE_TEST_KEY}")
        .replace("floors: 6", "floors: ${CE_TEST_FLOORS}")
        .replace("name: Dorm 7", "name: ${CE_TEST_UNSET:-Dorm} $${literal}")
    )
    config = load_config(write(tmp_path, text))
    assert config.privacy.card_key.get_secret_value() == KEY
    assert config.building.floors == 12
    assert config.building.name == "Dorm ${literal}"


def test_missing_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CE_TEST_MISSING", raising=False)
    p = only(write(tmp_path, GOOD.replace(KEY, "${CE_TEST_MISSING}")))
    assert (p.line, p.key) == (7, "privacy.card_key")
    assert "environment variable CE_TEST_MISSING is not set" in p.message
    assert "${CE_TEST_MISSING:-default}" in p.message


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "card_key").write_text(KEY + "\n")
    config = load_config(write(tmp_path, GOOD.replace(KEY, "!file secrets/card_key")))
    assert config.privacy.card_key.get_secret_value() == KEY
    monkeypatch.setenv("CE_TEST_CREDS", str(tmp_path / "secrets"))
    text = GOOD.replace(KEY, "!file ${CE_TEST_CREDS}/card_key")
    config = load_config(write(tmp_path, text, "abs.yaml"))
    assert config.privacy.card_key.get_secret_value() == KEY


def test_unreadable_secret_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace(KEY, "!file secrets/missing_key"))
    p = only(path)
    assert (p.line, p.key) == (7, "privacy.card_key")
    assert f"cannot read the file given by !file {tmp_path}/secrets/missing_key" in p.message
    assert "No such file or directory" in p.message


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    p = only(path)
    assert p.line is None
    assert "cannot read the configuration file: No such file or directory" in p.message
    assert str(p).startswith(str(path))


def test_unreadable_config_file(tmp_path: Path) -> None:
    p = only(tmp_path)  # a directory
    assert "cannot read the configuration file" in p.message


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD + "log:\n  level: info\n  level: debug\n"))
    assert (p.line, p.key) == (10, "log.level")
    assert "duplicate key `level` (also on line 9); keep only one" in p.message


def test_all_problems_of_a_file_are_reported_in_line_order(tmp_path: Path) -> None:
    text = GOOD.replace("floors: 6", "floors: -1").replace("id: b07", "id: B07")
    text += "log:\n  format: xml\n  colour: true\n"
    found = problems_of(write(tmp_path, text))
    assert [(p.line, p.key) for p in found] == [
        (2, "building.id"),
        (5, "building.floors"),
        (9, "log.format"),
        (10, "log.colour"),
    ]


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = GOOD + "x-defaults: &ret\n  raw_readings_days: 7\n"
    # x-defaults is itself an unknown key: anchors live inside known sections instead
    assert problems_of(write(tmp_path, text))[0].key == "x-defaults"
    text = GOOD + (
        "storage:\n  retention: &ret\n    raw_readings_days: 7\n"
        "  batch_max: 50\n"
        "log: {<<: {level: debug}, format: json}\n"
    )
    config = load_config(write(tmp_path, text, "merge.yaml"))
    assert config.storage.retention.raw_readings_days == 7
    assert (config.log.level, config.log.format) == ("debug", "json")


def test_format_loc() -> None:
    assert format_loc(("mqtt", "gates", 2, "id")) == "mqtt.gates[2].id"
    assert format_loc(()) == ""


# --- the device catalog ---------------------------------------------------------------------


class _Device(Section):
    id: str
    """Device id."""
    floor: int = 1
    """Floor."""


class _Gates(Section):
    enabled: bool = True
    """On."""
    gates: list[_Device] = Field(default_factory=list)
    """Gates."""

    def catalog_entries(self) -> Iterable[DeviceInfo]:
        return [DeviceInfo(g.id, DeviceKind.GATE, floor=g.floor) for g in self.gates]


class _Meters(Section):
    enabled: bool = True
    """On."""
    meters: list[_Device] = Field(default_factory=list)
    """Meters."""

    def catalog_entries(self) -> Iterable[DeviceInfo]:
        return [DeviceInfo(m.id, DeviceKind.METER, floor=m.floor) for m in self.meters]


class _WithDevices(GatewayConfig):
    access: _Gates = _Gates()
    """Gates."""
    power: _Meters = _Meters()
    """Meters."""


def test_catalog_is_built_from_every_section(tmp_path: Path) -> None:
    text = GOOD + (
        "access:\n  gates:\n    - {id: g1}\n    - {id: g2}\n"
        "power:\n  meters:\n    - {id: m101, floor: 1}\n"
    )
    config = load_config(write(tmp_path, text), model=_WithDevices)
    catalog = build_catalog(config)
    assert catalog.building == "b07"
    assert sorted(catalog.devices) == ["g1", "g2", "m101"]
    assert [d.id for d in catalog.of_kind(DeviceKind.METER)] == ["m101"]


def test_duplicate_device_ids_name_both_places(tmp_path: Path) -> None:
    text = GOOD + (
        "access:\n  gates:\n    - {id: g1}\n    - {id: m101}\npower:\n  meters:\n    - {id: m101}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), model=_WithDevices)
    [p] = info.value.problems
    assert p.line == 14
    assert p.key == "power"
    assert "device id `m101` is declared twice, in `access` and in `power`" in p.message
    assert "(lines 11, 14)" in p.message


def test_wrong_type_inside_a_list_names_the_index(tmp_path: Path) -> None:
    text = GOOD + "access:\n  gates:\n    - {id: g1}\n    - {id: g2, floor: top}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), model=_WithDevices)
    [p] = info.value.problems
    assert (p.line, p.key) == (11, "access.gates[1].floor")
    assert "found 'top'" in p.message


def test_unknown_key_inside_a_list_item(tmp_path: Path) -> None:
    text = GOOD + "access:\n  gates:\n    - id: g1\n      flor: 2\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), model=_WithDevices)
    [p] = info.value.problems
    assert (p.line, p.key) == (11, "access.gates[0].flor")
    assert "did you mean `floor`?" in p.message


def test_example_core_part_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Path(__file__).parent.parent / "deploy" / "examples" / "parts" / "core.yaml"
    monkeypatch.setenv("CAMPUS_EDGE_CARD_KEY", KEY)
    config = load_config(part)
    assert config.building.id == "b07"
    assert config.building.floors == 6
    assert config.log.format == "json"
    assert config.privacy.card_key.get_secret_value() == KEY


class _Broken(Section):
    enabled: bool = True
    """On."""

    def catalog_entries(self) -> Iterable[DeviceInfo]:
        raise ValueError("meter profile 'acrel-x' is unknown")


class _WithBroken(GatewayConfig):
    broken: _Broken = _Broken()
    """A section failing to list its devices."""


def test_section_failing_to_list_devices_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "broken:\n  enabled: true\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, model=_WithBroken)
    [p] = info.value.problems
    assert (p.line, p.key) == (8, "broken")
    assert "cannot list the devices of `broken`: meter profile 'acrel-x' is unknown" in p.message


def test_duplicate_inside_one_section(tmp_path: Path) -> None:
    text = GOOD + "access:\n  gates:\n    - {id: g1}\n    - {id: g1}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), model=_WithDevices)
    [p] = info.value.problems
    assert p.line == 11
    assert "device id `g1` is declared twice, in `access` (lines 10, 11)" in p.message


def test_every_configuration_key_is_described() -> None:
    """`campus-edge schema` documents every key (each field has a docstring)."""
    schema = GatewayConfig.model_json_schema()
    undocumented = []
    for name, model in [("GatewayConfig", schema), *schema.get("$defs", {}).items()]:
        for key, prop in model.get("properties", {}).items():
            if not prop.get("description"):
                undocumented.append(f"{name}.{key}")
    assert undocumented == []


def test_unknown_tag_and_recursive_alias(tmp_path: Path) -> None:
    p = only(write(tmp_path, GOOD.replace(KEY, "!env CARD_KEY")))
    assert (p.line, p.key) == (7, "privacy.card_key")
    assert "unknown tag !env: use `!file PATH` or `${NAME}`" in p.message
    p = only(write(tmp_path, GOOD + "storage: &s\n  retention: *s\n", "cycle.yaml"))
    assert (p.line, p.key) == (9, "storage.retention")
    assert "an alias refers to a mapping or list containing it" in p.message
