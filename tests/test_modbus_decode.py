"""Pure logic of the Modbus collector: decoders, request planning, report strategies, config."""

from __future__ import annotations

import struct

import pytest
from pydantic import ValidationError

from collectors.modbus.decode import (
    DataType,
    DecodeError,
    Encoding,
    Order,
    Table,
    decode_bit,
    decode_registers,
    encode_registers,
)
from collectors.modbus.plan import Block, compile_points, decode_block, plan_blocks
from collectors.modbus.profiles import builtin_profiles
from collectors.modbus.report import ReportFilter
from gateway.config.modbus import ModbusConfig, ProfileSpec, ReportSpec


def regs(fmt: str, value: float) -> list[int]:
    b = struct.pack(fmt, value)
    return [b[i] << 8 | b[i + 1] for i in range(0, len(b), 2)]


@pytest.mark.parametrize(
    ("dtype", "fmt", "value"),
    [
        (DataType.INT16, ">h", -1234),
        (DataType.UINT16, ">H", 65000),
        (DataType.INT32, ">i", -123456789),
        (DataType.UINT32, ">I", 4_000_000_000),
        (DataType.FLOAT32, ">f", 229.5),
    ],
)
def test_big_endian_types(dtype: DataType, fmt: str, value: float) -> None:
    assert decode_registers(regs(fmt, value), Encoding(type=dtype)) == value


def test_word_and_byte_order() -> None:
    be = regs(">f", 1234.5)  # [hi word, lo word]
    swapped_words = [be[1], be[0]]
    swap_bytes = [((w & 0xFF) << 8) | (w >> 8) for w in be]
    f32 = DataType.FLOAT32
    assert decode_registers(swapped_words, Encoding(f32, word_order=Order.LITTLE)) == 1234.5
    assert decode_registers(swap_bytes, Encoding(f32, byte_order=Order.LITTLE)) == 1234.5
    both = [swap_bytes[1], swap_bytes[0]]
    assert decode_registers(both, Encoding(f32, Order.LITTLE, Order.LITTLE)) == 1234.5
    assert decode_registers([0x3412], Encoding(DataType.UINT16, byte_order=Order.LITTLE)) == 0x1234


def test_scale_offset_and_round_trip() -> None:
    enc = Encoding(DataType.INT16, scale=0.1, offset=-40.0)
    assert decode_registers([0xFFF6], enc) == pytest.approx(-41.0)
    for e in (enc, Encoding(DataType.UINT32, Order.LITTLE, Order.LITTLE, 0.01)):
        assert decode_registers(encode_registers(12.3, e), e) == pytest.approx(12.3)
    assert decode_bit(True, Encoding(DataType.BOOL)) == 1.0
    assert decode_bit(0, Encoding(DataType.BOOL, scale=-1, offset=1)) == 1.0  # inverted input


def test_bad_raw_values_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="needs 2 registers"):
        decode_registers([1], Encoding(DataType.FLOAT32))
    with pytest.raises(DecodeError, match="not finite"):
        decode_registers([0x7FC0, 0x0000], Encoding(DataType.FLOAT32))
    with pytest.raises(DecodeError, match="16-bit"):
        decode_registers([70000], Encoding(DataType.UINT16))


def test_sdm120_is_three_requests_and_dds238_one() -> None:
    profiles = builtin_profiles()
    sdm = plan_blocks(compile_points(profiles["sdm120"]), max_gap=10)
    assert [(b.table, b.start, b.count) for b in sdm] == [
        (Table.INPUT, 0x00, 0x20),
        (Table.INPUT, 0x46, 2),
        (Table.INPUT, 0x156, 2),
    ]
    dds = plan_blocks(compile_points(profiles["dds238"]), max_gap=10)
    assert [(b.table, b.start, b.count) for b in dds] == [(Table.HOLDING, 0, 0x12)]
    dds_tight = plan_blocks(compile_points(profiles["dds238"]), max_gap=0)
    assert [(b.start, b.count) for b in dds_tight] == [(0, 2), (0x0C, 3), (0x10, 2)]
    sio = plan_blocks(compile_points(profiles["safety-io"]))
    assert [(b.table, b.start, b.count) for b in sio] == [
        (Table.DISCRETE, 0, 4),
        (Table.INPUT, 0, 2),
    ]


def test_merging_never_exceeds_the_request_limit() -> None:
    profile = ProfileSpec(
        points=[
            {"metric": f"r{i}", "table": "holding", "address": i * 3, "type": "float32"}
            for i in range(100)
        ]
    )
    points = compile_points(profile)
    for limit in (125, 60, 2):
        blocks = plan_blocks(points, max_gap=124, max_registers=limit)
        assert all(b.count <= limit for b in blocks)
        assert sorted(p.metric for b in blocks for p in b.points) == sorted(
            p.metric for p in points
        )
        for b in blocks:
            for p in b.points:
                assert b.start <= p.address
                assert p.address + p.width <= b.start + b.count
    assert len(plan_blocks(points, max_gap=124)) == 3  # 300 registers → 125 + 125 + 50
    with pytest.raises(ValueError, match="max_registers"):
        plan_blocks(points, max_registers=126)


def test_decode_block_reports_bad_points_and_short_answers() -> None:
    profile = ProfileSpec(
        points=[
            {"metric": "a", "table": "input", "address": 0, "type": "float32"},
            {"metric": "b", "table": "input", "address": 2, "type": "uint16", "scale": 0.5},
        ]
    )
    (block,) = plan_blocks(compile_points(profile))
    good, bad = decode_block(block, [0x7FC0, 0, 10])
    assert good == [("b", 5.0)]
    assert bad[0][0] == "a"
    assert "not finite" in bad[0][1]
    with pytest.raises(DecodeError):
        decode_block(block, [0, 0])
    assert isinstance(block, Block)


def test_report_strategies() -> None:
    f = ReportFilter()
    every = ReportSpec(mode="every_poll")
    change = ReportSpec(mode="on_change", deadband=5)
    either = ReportSpec(mode="on_change_or_every", deadband=5, every_s=10)
    assert [f.offer(every, "x", 1.0, t) for t in (0, 1, 2)] == [True, True, True]
    assert [f.offer(change, "p", v, 0) for v in (100, 104, 104.9, 106, 101)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    kept = [t for t in range(0, 30_000, 1000) if f.offer(either, "q", 50.0, t)]
    assert kept == [0, 10_000, 20_000]
    any_change = ReportSpec(mode="on_change")
    assert [f.offer(any_change, "door", v, 0) for v in (0, 0, 1, 1, 0)] == [
        True,
        False,
        True,
        False,
        True,
    ]
    f.reset()
    assert f.offer(change, "p", 101, 0)


EXAMPLE = {
    "enabled": True,
    "converters": [
        {"id": "conv-3", "host": "10.3.0.10"},
        {"id": "safety", "host": "10.0.0.20"},
    ],
    "floors": [{"floor": 3, "converter": "conv-3", "rooms": 20, "profile_by_room": {3: "dds238"}}],
    "safety": [{"floor": 3, "converter": "safety"}],
}


def test_config_generates_devices_and_catalog() -> None:
    cfg = ModbusConfig.model_validate(EXAMPLE)
    devs = {d.id: d for d in cfg.all_devices()}
    assert len(devs) == 21
    assert devs["m-3-12"].room == "312"
    assert devs["m-3-12"].unit == 12
    assert devs["m-3-03"].profile == "dds238"
    assert devs["safety-3"].unit == 3
    cat = {d.id: d for d in cfg.catalog_entries()}
    assert cat["m-3-12"].kind == "meter"
    assert cat["m-3-12"].floor == 3
    units = {m.name: m.unit for m in cat["m-3-12"].metrics}
    assert units == {
        "voltage": "V",
        "current": "A",
        "power": "W",
        "apparent_power": "VA",
        "power_factor": "",
        "frequency": "Hz",
        "energy": "kWh",
    }
    assert cat["safety-3"].kind == "safety_io"
    assert {m.name for m in cat["safety-3"].metrics} == {
        "smoke",
        "fire_door",
        "water_leak",
        "tamper",
        "temperature",
        "humidity",
    }


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"floors": [{"floor": 3, "converter": "nope", "rooms": 2}]}, "unknown converter"),
        ({"floors": [{"floor": 3, "converter": "conv-3", "rooms": 2, "profile": "x"}]}, "profile"),
        ({"safety": [{"floor": 3, "converter": "conv-3"}]}, "already used"),
        (
            {"devices": [{"id": "m-3-01", "converter": "conv-3", "unit": 99, "profile": "sdm120"}]},
            "used twice",
        ),
        ({"converters": [{"id": "c", "host": "h", "max_registers": 126}]}, "125"),
        (
            {"profiles": {"x": {"points": [{"metric": "a", "table": "coil", "address": 0}]}}},
            "type: bool",
        ),
    ],
)
def test_config_errors_name_the_problem(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModbusConfig.model_validate({**EXAMPLE, **patch})


def test_custom_profile_in_config() -> None:
    cfg = ModbusConfig.model_validate(
        {
            **EXAMPLE,
            "profiles": {
                "acme-pm": {
                    "points": [
                        {
                            "metric": "power",
                            "table": "input",
                            "address": 10,
                            "type": "int32",
                            "word_order": "little",
                            "unit": "W",
                        }
                    ]
                }
            },
            "devices": [
                {
                    "id": "pm-lobby",
                    "converter": "safety",
                    "unit": 50,
                    "profile": "acme-pm",
                    "group": "meters",
                    "zone": "lobby",
                }
            ],
        }
    )
    cat = {d.id: d for d in cfg.catalog_entries()}
    assert cat["pm-lobby"].zone == "lobby"
    assert cat["pm-lobby"].metrics[0].unit == "W"


def test_the_example_building_section_is_valid() -> None:
    from pathlib import Path  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    path = Path(__file__).parents[1] / "deploy/examples/parts/modbus.yaml"
    cfg = ModbusConfig.model_validate(yaml.safe_load(path.read_text("utf-8"))["modbus"])
    devices = cfg.all_devices()
    assert sum(1 for d in devices if d.profile in ("sdm120", "dds238")) == 120
    assert sum(1 for d in devices if d.profile == "safety-io") == 6
    assert {d.id for d in devices} >= {"m-3-12", "safety-3", "pm-lobby"}
