"""The gate and terminal simulator's pure generator: spec-exact, deterministic, realistic."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.mqtt.decode import Decoder
from gateway.cli import main
from gateway.config.mqtt import MqttConfig
from gateway.model import DeviceStatus, Event
from gateway.privacy import Pseudonymizer
from simulators.gates.generator import (
    Incident,
    SimConfig,
    SimMessage,
    Simulation,
    default_incidents,
)
from simulators.gates.residents import make_residents, write_roster

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2026-11-23 00:00 +08:00
MONDAY = int(datetime(2026, 11, 23, tzinfo=TZ).timestamp() * 1000)
DAY = 86_400_000


@pytest.fixture(scope="module")
def two_days() -> list[SimMessage]:
    cfg = SimConfig(seed=5, incidents=default_incidents(MONDAY, TZ))
    return Simulation(cfg, MONDAY).generate(MONDAY + 2 * DAY)


def local_hour(ms: int) -> float:
    t = datetime.fromtimestamp(ms / 1000, TZ)
    return t.hour + t.minute / 60


def events(msgs: list[SimMessage]) -> list[tuple[SimMessage, dict[str, object]]]:
    return [(m, json.loads(m.payload)) for m in msgs if m.topic.endswith("/event")]


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = Simulation(SimConfig(seed=1), MONDAY).generate(MONDAY + DAY // 4)
    b = Simulation(SimConfig(seed=1), MONDAY).generate(MONDAY + DAY // 4)
    c = Simulation(SimConfig(seed=2), MONDAY).generate(MONDAY + DAY // 4)
    assert a == b
    assert a != c


def test_every_message_is_what_the_spec_says(two_days: list[SimMessage]) -> None:
    cfg = SimConfig()
    mqtt = MqttConfig.model_validate(
        {
            "gates": [{"id": g.id} for g in cfg.gates],
            "terminals": [{"id": t} for t in cfg.terminals],
        }
    )
    d = Decoder(mqtt, cfg.building, TZ, Pseudonymizer(b"0123456789abcdef"))
    kinds: Counter[str] = Counter()
    for m in two_days:
        item = d.decode(m.topic, m.payload, m.at_ms)  # raises Rejected if not
        assert isinstance(item, Event | DeviceStatus)
        kinds[item.kind if isinstance(item, Event) else "status"] += 1
        assert m.retain == m.topic.endswith("/status")
    assert [m.at_ms for m in two_days] == sorted(m.at_ms for m in two_days)
    for kind in ("gate.pass", "terminal.txn", "status", "gate.denied_no_permission"):
        assert kinds[kind] > 0, kind


def test_serial_numbers_increase_by_one_per_gate(two_days: list[SimMessage]) -> None:
    per_gate: dict[str, list[int]] = {}
    for m, body in events(two_days):
        per_gate.setdefault(m.topic, []).append(int(str(body["serialNo"])))
    for serials in per_gate.values():
        assert serials == list(range(serials[0], serials[0] + len(serials)))


def test_daily_rhythm_free_mode_and_late_returns(two_days: list[SimMessage]) -> None:
    passes = [(m, b) for m, b in events(two_days) if b["event"] == "pass"]
    hours = Counter(int(local_hour(m.at_ms)) for m, _ in passes)
    assert hours[7] + hours[8] > hours[3] + hours[4]  # mornings busy, nights quiet
    assert hours[17] + hours[18] > 20
    late = [b for m, b in passes if b["direction"] == "in" and not 6 <= local_hour(m.at_ms) < 23]
    assert late, "some residents come back after curfew"
    # Free mode at peak hours: the gates say so, and record no events meanwhile.
    free = [
        m.at_ms
        for m in two_days
        if m.topic.endswith("/status") and json.loads(m.payload).get("mode") == "free"
    ]
    assert free
    assert all(not 7.6 <= local_hour(m.at_ms) < 8.1 for m, _ in events(two_days))


def test_incidents_on_the_timeline(two_days: list[SimMessage]) -> None:
    kinds = Counter(str(b["event"]) for _, b in events(two_days))
    for k in ("tailgate", "climb", "forced", "denied_blacklist"):
        assert kinds[k] >= 1, k
    offline = [
        m
        for m in two_days
        if m.topic == "campus/b07/gate/gate-2-in/status" and b'"online":false' in m.payload
    ]
    assert len(offline) == 1
    # While offline, the gate neither heartbeats nor records events.
    t0 = offline[0].at_ms
    quiet = [m for m in two_days if "gate-2-in" in m.topic and t0 < m.at_ms < t0 + 590_000]
    assert quiet == []


def test_terminals_fail_reboot_and_run_out_of_paper() -> None:
    cfg = SimConfig(
        seed=9,
        paper_sheets=40,
        txn_per_hour=20,
        incidents=(Incident(3600 * 10, "terminal_fault", "term-1", 1200),),
    )
    msgs = Simulation(cfg, MONDAY).generate(MONDAY + DAY)
    status = [
        json.loads(m.payload) for m in msgs if "/terminal/" in m.topic and "status" in m.topic
    ]
    assert any(s.get("paper") == "out" for s in status)
    assert any(s.get("state") == "fault" for s in status)
    assert sum(1 for s in status if s["online"] is False) == len(cfg.terminals)  # nightly reboot
    txns = [json.loads(m.payload) for m in msgs if m.topic.endswith("/txn")]
    assert {t["result"] for t in txns} == {"ok", "failed"}


def test_weekend_is_quieter_in_the_morning() -> None:
    saturday = MONDAY + 5 * DAY
    sim = SimConfig(seed=4)
    week = Simulation(sim, MONDAY).generate(MONDAY + DAY)
    weekend = Simulation(sim, saturday).generate(saturday + DAY)

    def morning_outs(msgs: list[SimMessage]) -> int:
        return sum(
            1
            for m, b in events(msgs)
            if b["event"] == "pass" and b["direction"] == "out" and 6 <= local_hour(m.at_ms) < 9
        )

    assert morning_outs(weekend) < morning_outs(week) / 3


def test_roster_csv(tmp_path: Path) -> None:
    residents = make_residents(7)
    assert len(residents) == 6 * 20 * 4
    assert len({r.card_no for r in residents}) == len(residents)
    path = tmp_path / "roster.csv"
    assert write_roster(path, residents) == len(residents)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows[0].keys() == {"cardNo", "room", "name"}
    assert rows[0]["cardNo"] == residents[0].card_no
    assert {r["room"] for r in rows} >= {"101", "620"}
    # The simulated passages use the roster's cards.
    sim = Simulation(SimConfig(seed=7), MONDAY)
    cards = {r.card_no for r in residents}
    msgs = sim.generate(MONDAY + DAY // 2)
    passes = [b for _, b in events(msgs) if b["event"] == "pass"]
    assert passes
    assert all(b["cardNo"] in cards for b in passes)


def test_cli_writes_the_roster_and_knows_record_replay(tmp_path: Path) -> None:
    out = tmp_path / "roster.csv"
    assert main(["simulate", "gates", "--seed", "7", "--write-roster", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith(make_residents(7)[0].card_no)
    with pytest.raises(SystemExit):
        main(["replay", "x.jsonl", "--speed", "2", "--as-fast-as-possible"])  # exclusive
    with pytest.raises(SystemExit):
        main(["record", "--broker", "nohostport", "--out", "x"])
