"""Pure decoding: built-in profiles, vendor mappings from configuration, validation reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from collectors.mqtt.decode import Decoder, Rejected
from gateway.config.mqtt import MqttConfig
from gateway.model import DeviceStatus, Event
from gateway.privacy import Pseudonymizer

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_780_000_000_000  # 2026-05-28T20:26:40Z = 2026-05-29T04:26:40+08:00
TZ = ZoneInfo("Asia/Shanghai")
PSEUDO = Pseudonymizer(b"unit-test-key-0123456789")


def decoder(**cfg: Any) -> Decoder:
    base: dict[str, Any] = {
        "enabled": True,
        "gates": [{"id": "gate-1-in"}, {"id": "gate-2-in"}],
        "terminals": [{"id": "term-1"}],
    }
    base.update(cfg)
    return Decoder(MqttConfig.model_validate(base), "b07", TZ, PSEUDO)


def js(**kw: Any) -> bytes:
    return json.dumps(kw).encode()


def test_subscriptions_cover_the_spec_topics() -> None:
    assert decoder().subscriptions == [
        "campus/b07/gate/+/event",
        "campus/b07/gate/+/status",
        "campus/b07/terminal/+/txn",
        "campus/b07/terminal/+/status",
    ]


def test_gate_event_without_optional_fields() -> None:
    ev = decoder().decode(
        "campus/b07/gate/gate-1-in/event",
        js(serialNo=0, time="2026-05-29T04:26:39.5+08:00", event="timeout", direction="in"),
        NOW,
    )
    assert ev == Event(
        "gate-1-in:0",
        "gate-1-in",
        "gate.timeout",
        NOW - 500,
        NOW,
        {"direction": "in", "serialNo": 0},
    )


def test_naive_and_utc_times() -> None:
    d = decoder()
    topic = "campus/b07/gate/gate-1-in/event"
    for t in ("2026-05-28T20:26:40Z", "2026-05-29T04:26:40", "2026-05-28T20:26:40.000+00:00"):
        ev = d.decode(topic, js(serialNo=1, time=t, event="pass", direction="in"), NOW)
        assert isinstance(ev, Event)
        assert ev.ts_ms == NOW, t


def test_last_will_is_never_rejected_for_age() -> None:
    d = decoder()
    old = "2026-05-20T00:00:00+08:00"  # nine days before NOW
    st = d.decode("campus/b07/gate/gate-1-in/status", js(online=False, time=old), NOW)
    assert st == DeviceStatus("gate-1-in", NOW, False, None)
    with pytest.raises(Rejected, match="off the gateway clock"):
        d.decode("campus/b07/gate/gate-1-in/status", js(online=True, time=old), NOW)


def test_terminal_without_printer_and_bad_faults() -> None:
    d = decoder()
    st = d.decode("campus/b07/terminal/term-1/status", js(online=True, state="ok"), NOW)
    assert st == DeviceStatus("term-1", NOW, True, "ok", {"faults": []})
    with pytest.raises(Rejected, match="faults: expected a list of strings") as exc:
        d.decode("campus/b07/terminal/term-1/status", js(online=True, faults=[1]), NOW)
    assert exc.value.code == "wrong_type"
    assert exc.value.device == "term-1"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            js(serialNo=True, time="2026-05-29T04:26:40+08:00", event="pass", direction="in"),
            "wrong_type",
        ),
        (
            js(serialNo=-1, time="2026-05-29T04:26:40+08:00", event="pass", direction="in"),
            "wrong_type",
        ),
        (js(serialNo=1, time=12, event="pass", direction="in"), "wrong_type"),
        (  # past 64 bits the JSON reader gives a float: refused, not stored wrong
            js(serialNo=2**70, time="2026-05-29T04:26:40+08:00", event="pass", direction="in"),
            "wrong_type",
        ),
        (
            js(serialNo=1, time="2026-05-29T04:26:40+08:00", event="pass", direction="up"),
            "unknown_value",
        ),
        (js(serialNo=1, time="2026-05-29T04:26:40+08:00", event="pass"), "missing_field"),
        (b"\xff\xfe", "not_json"),
        (b"", "not_json"),
    ],
)
def test_rejections_have_codes(payload: bytes, code: str) -> None:
    with pytest.raises(Rejected) as exc:
        decoder().decode("campus/b07/gate/gate-1-in/event", payload, NOW)
    assert exc.value.code == code


def test_unexpected_topic_and_other_building() -> None:
    with pytest.raises(Rejected, match="no mapping matches") as exc:
        decoder().decode("campus/b08/gate/gate-1-in/event", b"{}", NOW)
    assert exc.value.device is None


def test_card_pseudonym_is_cached_and_stable() -> None:
    d = decoder()
    body = js(
        serialNo=1, time="2026-05-29T04:26:40+08:00", event="pass", direction="in", cardNo="123456"
    )
    a = d.decode("campus/b07/gate/gate-1-in/event", body, NOW)
    b = d.decode("campus/b07/gate/gate-2-in/event", body, NOW)
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert a.data["card"] == b.data["card"] == PSEUDO.card("123456")


def hikvision() -> Decoder:
    doc = yaml.safe_load((ROOT / "deploy/examples/hikvision-mapping.yaml").read_text())
    return decoder(builtin_profiles=False, mappings=doc["mqtt"]["mappings"])


def hik_payload(sub: int, **event: Any) -> bytes:
    ace: dict[str, Any] = {
        "deviceName": "Lobby turnstile 1",
        "majorEventType": 5,
        "subEventType": sub,
        "cardNo": "3071234567",
        "cardReaderNo": 1,
        "serialNo": 20881,
        "currentVerifyMode": "cardOrFace",
        "userType": "normal",
        "employeeNoString": "2023011",
    }
    ace.update(event)
    return js(
        ipAddress="10.7.1.21",
        dateTime="2026-05-29T04:26:30+08:00",
        eventType="AccessControllerEvent",
        eventState="active",
        AccessControllerEvent=ace,
    )


def test_hikvision_mapping_example() -> None:
    d = hikvision()
    assert d.subscriptions == ["hik/b07/+/event"]
    ev = d.decode("hik/b07/k3g-lobby-1/event", hik_payload(75), NOW)
    assert ev == Event(
        "gate-1-in:20881",
        "gate-1-in",
        "gate.pass",
        NOW - 10_000,
        NOW,
        {
            "direction": "in",
            "serialNo": 20881,
            "card": PSEUDO.card("3071234567"),
            "personType": "student",
            "verifyMode": "face",
        },
    )
    denied = d.decode(
        "hik/b07/k3g-lobby-2/event",
        hik_payload(9, cardReaderNo=2, currentVerifyMode="fingerPrint", userType="blackList"),
        NOW,
    )
    assert isinstance(denied, Event)
    assert denied.kind == "gate.denied_unknown_card"
    assert denied.device == "gate-2-in"
    assert dict(denied.data).keys() == {"direction", "serialNo", "card"}  # unmapped: left out
    assert denied.data["direction"] == "out"
    # Door state reports are acknowledged and not stored.
    assert d.decode("hik/b07/k3g-lobby-1/event", hik_payload(22), NOW) is None
    with pytest.raises(Rejected, match="unknown value '999'"):
        d.decode("hik/b07/k3g-lobby-1/event", hik_payload(999), NOW)
    with pytest.raises(Rejected, match="unknown device 'k3g-lobby-9'"):
        d.decode("hik/b07/k3g-lobby-9/event", hik_payload(75), NOW)


def test_epoch_and_pattern_time_formats() -> None:
    base = {"name": "v", "kind": "gate_event", "topic": "v/{device}", "fields": {"time": "ts"}}
    d = decoder(builtin_profiles=False, mappings=[{**base, "time_format": "epoch_ms"}])
    ev = d.decode("v/gate-1-in", js(serialNo=1, ts=NOW - 1, event="pass", direction="in"), NOW)
    assert isinstance(ev, Event)
    assert ev.ts_ms == NOW - 1
    d = decoder(builtin_profiles=False, mappings=[{**base, "time_format": "%Y%m%d %H%M%S"}])
    ev = d.decode(
        "v/gate-1-in", js(serialNo=1, ts="20260529 042640", event="pass", direction="in"), NOW
    )
    assert isinstance(ev, Event)
    assert ev.ts_ms == NOW


def test_mapping_config_errors() -> None:
    with pytest.raises(ValueError, match="must contain"):
        MqttConfig.model_validate(
            {"mappings": [{"name": "x", "kind": "gate_event", "topic": "a/b"}]}
        )
    with pytest.raises(ValueError, match="wildcards"):
        MqttConfig.model_validate(
            {"mappings": [{"name": "x", "kind": "gate_event", "topic": "a/+/{device}"}]}
        )
    with pytest.raises(ValueError, match="declared twice"):
        MqttConfig.model_validate({"gates": [{"id": "g"}], "terminals": [{"id": "g"}]})


def test_example_building_section_is_valid() -> None:
    doc = yaml.safe_load((ROOT / "deploy/examples/parts/mqtt.yaml").read_text())
    cfg = MqttConfig.model_validate(doc["mqtt"])
    kinds = sorted(str(e.kind) for e in cfg.catalog_entries())
    assert kinds == ["gate"] * 4 + ["terminal"] * 2
