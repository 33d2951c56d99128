"""The pure part of the gate and terminal simulator: a seed and a time span in, a time-ordered
list of MQTT messages out (what the devices of spec sections 1–2 would publish).

No I/O and no wall clock: scenario tests and the rule engine's replays call `generate()`
directly and feed the messages wherever they like; `simulators.gates.play` publishes them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from simulators.gates.residents import Resident, day_passages, make_residents

DAY_MS = 86_400_000
IncidentKind = Literal[
    "tailgate", "forced", "climb", "reverse", "lost_card", "gate_offline", "terminal_fault"
]


@dataclass(frozen=True, slots=True)
class SimMessage:
    at_ms: int
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True, slots=True)
class Incident:
    """Something injected at a moment: `at` is an offset from the run's start in seconds."""

    at_s: float
    kind: IncidentKind
    device: str | None = None
    duration_s: float = 600.0


@dataclass(frozen=True, slots=True)
class GateSpec:
    id: str
    direction: Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class SimConfig:
    building: str = "b07"
    seed: int = 7
    timezone: str = "Asia/Shanghai"
    floors: int = 6
    rooms_per_floor: int = 20
    per_room: int = 4
    gates: tuple[GateSpec, ...] = (
        GateSpec("gate-1-in", "in"),
        GateSpec("gate-2-in", "in"),
        GateSpec("gate-1-out", "out"),
        GateSpec("gate-2-out", "out"),
    )
    terminals: tuple[str, ...] = ("term-1", "term-2")
    heartbeat_s: float = 30.0
    free_mode: tuple[tuple[float, float], ...] = ((7.6, 8.1), (11.85, 12.15), (17.4, 17.8))
    """Weekday local hours [from, to) when gates run in free mode (no events recorded)."""
    incidents: tuple[Incident, ...] = ()
    extra_events_per_hour: float = 2.0
    """Denied cards, visitors and timeouts per gate and daytime hour."""
    txn_per_hour: float = 6.0
    """Terminal transactions per terminal and opening hour (08:00–22:00)."""
    paper_sheets: int = 150


def default_incidents(start_ms: int, tz: tzinfo) -> tuple[Incident, ...]:
    """A day's incident timeline relative to a run starting at `start_ms`."""

    def at(hour: float) -> float:
        local = datetime.fromtimestamp(start_ms / 1000, tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        t = midnight + timedelta(hours=hour)
        if t.timestamp() * 1000 < start_ms:
            t += timedelta(days=1)
        return t.timestamp() - start_ms / 1000

    return (
        Incident(at(10.25), "lost_card", "gate-1-in"),
        Incident(at(14.5), "gate_offline", "gate-2-in", 600),
        Incident(at(16.0), "terminal_fault", "term-2", 1800),
        Incident(at(22.3), "tailgate", "gate-1-in"),
        Incident(at(23.6), "climb", "gate-2-in"),
        Incident(at(2.5), "forced", "gate-1-out"),
    )


def local_iso(ts_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class _Gate:
    spec: GateSpec
    serial: int
    mode: str = "normal"
    online: bool = True
    offline_until: int = 0


@dataclass(slots=True)
class _Terminal:
    id: str
    serial: int
    paper: int
    state: str = "ok"
    faults: list[str] = field(default_factory=list)
    online: bool = True
    busy_until: int = 0


class Simulation:
    """Generates the building's messages for [start_ms, end_ms), deterministically."""

    def __init__(self, cfg: SimConfig, start_ms: int) -> None:
        self.cfg = cfg
        self.start_ms = start_ms
        self.tz = ZoneInfo(cfg.timezone)
        self.residents: list[Resident] = make_residents(
            cfg.seed, cfg.floors, cfg.rooms_per_floor, cfg.per_room
        )
        seed_rng = random.Random(f"{cfg.seed}:serials")
        self._gates = {g.id: _Gate(g, seed_rng.randrange(1000, 50_000)) for g in cfg.gates}
        self._terms = {
            t: _Terminal(t, seed_rng.randrange(100, 5000), cfg.paper_sheets) for t in cfg.terminals
        }
        self.lost_card = self.residents[seed_rng.randrange(len(self.residents))].card_no
        """The card the `lost_card` incident presents (reported lost: blacklisted)."""

    # --- public ---------------------------------------------------------------------------

    def generate(self, end_ms: int) -> list[SimMessage]:
        """Every message in [start_ms, end_ms), ordered by time (ties keep creation order)."""
        raw: list[tuple[int, int, str, dict[str, Any], bool]] = []
        seq = iter(range(10**12))

        def emit(at: int, topic: str, body: dict[str, Any], retain: bool = False) -> None:
            if self.start_ms <= at < end_ms:
                raw.append((at, next(seq), topic, body, retain))

        actions = self._timeline(end_ms)
        for at, _, action in actions:
            action(at, emit)
        raw.sort(key=lambda r: (r[0], r[1]))
        return [
            SimMessage(at, topic, json.dumps(body, separators=(",", ":")).encode(), retain)
            for at, _, topic, body, retain in raw
        ]

    # --- the timeline ---------------------------------------------------------------------

    def _timeline(self, end_ms: int) -> list[tuple[int, int, Any]]:
        cfg = self.cfg
        acts: list[tuple[int, int, Any]] = []
        n = iter(range(10**12))

        def at(t: int, fn: Any) -> None:
            acts.append((t, next(n), fn))

        # Heartbeats and mode changes.
        hb = int(cfg.heartbeat_s * 1000)
        t = self.start_ms
        while t < end_ms:
            at(t, self._heartbeat)
            t += hb
        day0 = self._local_midnight(self.start_ms)
        day = day0
        away: dict[str, bool] = {}
        while day < end_ms:
            local = datetime.fromtimestamp(day / 1000, self.tz)
            weekend = local.weekday() >= 5
            rng = random.Random(f"{cfg.seed}:day:{local.date().isoformat()}")
            if not weekend:
                for lo, hi in cfg.free_mode:
                    at(day + int(lo * 3_600_000), self._mode_setter("free"))
                    at(day + int(hi * 3_600_000), self._mode_setter("normal"))
            for r in self.residents:
                passages, away[r.card_no] = day_passages(
                    rng, r, weekend, away.get(r.card_no, False)
                )
                for hour, direction in passages:
                    at(day + int(hour * 3_600_000), self._passage(r, direction, rng))
            self._extras(day, rng, at)
            self._terminal_day(day, rng, at)
            day += DAY_MS
        for inc in cfg.incidents:
            begin = self.start_ms + int(inc.at_s * 1000)
            at(begin, self._incident(inc))
            if inc.kind in ("gate_offline", "terminal_fault"):
                at(begin + int(inc.duration_s * 1000), self._restore(inc))
        acts.sort(key=lambda a: (a[0], a[1]))
        return acts

    def _local_midnight(self, ts_ms: int) -> int:
        local = datetime.fromtimestamp(ts_ms / 1000, self.tz)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)

    def _iso(self, ts_ms: int) -> str:
        return local_iso(ts_ms, self.tz)

    def _topic(self, kind: str, device: str, leaf: str) -> str:
        return f"campus/{self.cfg.building}/{kind}/{device}/{leaf}"

    def _heartbeat(self, at: int, emit: Any) -> None:
        for g in self._gates.values():
            if g.online:
                emit(at, self._topic("gate", g.spec.id, "status"), self._gate_status(g, at), True)
        for term in self._terms.values():
            if term.online:
                emit(
                    at,
                    self._topic("terminal", term.id, "status"),
                    self._term_status(term, at),
                    True,
                )

    def _gate_status(self, g: _Gate, at: int) -> dict[str, Any]:
        return {"online": g.online, "mode": g.mode, "time": self._iso(at)}

    def _term_status(self, t: _Terminal, at: int) -> dict[str, Any]:
        paper = "out" if t.paper <= 0 else "low" if t.paper < 30 else "ok"
        return {
            "online": t.online,
            "state": t.state,
            "paper": paper,
            "faults": list(t.faults),
            "time": self._iso(at),
        }

    def _mode_setter(self, mode: str) -> Any:
        def act(at: int, emit: Any) -> None:
            for g in self._gates.values():
                g.mode = mode
                if g.online:
                    emit(
                        at, self._topic("gate", g.spec.id, "status"), self._gate_status(g, at), True
                    )

        return act

    def _lane(self, direction: str, rng: random.Random) -> _Gate | None:
        lanes = [g for g in self._gates.values() if g.spec.direction == direction and g.online]
        return rng.choice(lanes) if lanes else None

    def _gate_event(
        self, g: _Gate, at: int, event: str, card: str | None, **extra: Any
    ) -> dict[str, Any]:
        g.serial += 1
        body: dict[str, Any] = {
            "serialNo": g.serial,
            "time": self._iso(at),
            "event": event,
            "direction": g.spec.direction,
        }
        if card is not None:
            body["cardNo"] = card
        body.update(extra)
        return body

    def _passage(self, r: Resident, direction: str, rng: random.Random) -> Any:
        mode = "face" if rng.random() < 0.6 else "card"

        def act(at: int, emit: Any) -> None:
            g = self._lane(direction, rng)
            if g is None or g.mode != "normal":
                return  # free mode: people pass and no events are recorded
            body = self._gate_event(g, at, "pass", r.card_no, personType="student", verifyMode=mode)
            emit(at, self._topic("gate", g.spec.id, "event"), body)

        return act

    def _extras(self, day: int, rng: random.Random, at: Any) -> None:
        hours = 15  # 08:00–23:00
        n = int(self.cfg.extra_events_per_hour * hours * len(self._gates))
        for _ in range(n):
            t = day + int(rng.uniform(8, 23) * 3_600_000)
            direction = rng.choice(("in", "in", "out"))
            what = rng.choices(
                ("denied_no_permission", "denied_unknown_card", "denied_time_window", "timeout"),
                (4, 2, 1, 3),
            )[0]
            card = (
                None
                if what == "timeout"
                else f"{rng.choice(('31', '40', '52'))}{rng.randrange(10**8):08d}"
            )
            if what in ("denied_time_window", "timeout"):
                card = self.residents[rng.randrange(len(self.residents))].card_no
            ptype = "visitor" if what == "denied_unknown_card" else "student"
            at(t, self._extra_event(direction, what, card, ptype, rng))

    def _extra_event(
        self, direction: str, what: str, card: str | None, ptype: str, rng: random.Random
    ) -> Any:
        def act(at_ms: int, emit: Any) -> None:
            g = self._lane(direction, rng)
            if g is None or g.mode != "normal":
                return
            body = self._gate_event(g, at_ms, what, card, personType=ptype, verifyMode="card")
            emit(at_ms, self._topic("gate", g.spec.id, "event"), body)

        return act

    def _terminal_day(self, day: int, rng: random.Random, at: Any) -> None:
        for term in self._terms.values():
            n = int(self.cfg.txn_per_hour * 14 * rng.uniform(0.7, 1.3))
            for _ in range(n):
                t = day + int(rng.uniform(8, 22) * 3_600_000)
                at(t, self._txn(term, rng))
            # Staff refill paper at 09:00 and 14:00; the terminal reboots nightly.
            for hour in (9, 14):
                at(day + hour * 3_600_000, self._refill(term))
            reboot = day + int(rng.uniform(3, 4) * 3_600_000)
            at(reboot, self._online(term, False))
            at(reboot + rng.randrange(60_000, 180_000), self._online(term, True))

    def _txn(self, term: _Terminal, rng: random.Random) -> Any:
        service = rng.choices(
            ("card_topup", "print", "certificate", "id_photo", "repair_request", "other"),
            (5, 4, 1, 1, 1, 1),
        )[0]
        card = self.residents[rng.randrange(len(self.residents))].card_no
        duration = int(rng.uniform(2000, 40_000))
        jam = rng.random() < 0.01
        sheets = rng.randint(1, 8)

        def act(at_ms: int, emit: Any) -> None:
            if not term.online or term.state == "fault" or at_ms < term.busy_until:
                return
            term.busy_until = at_ms + duration
            result = "ok"
            if service in ("print", "certificate", "id_photo"):
                if term.paper < sheets or term.state != "ok":
                    result = "failed"
                else:
                    term.paper -= sheets
                    if jam:
                        result = "failed"
                        term.state = "degraded"
                        term.faults = ["printer_jam"]
            elif rng.random() < 0.03:
                result = "failed"
            term.serial += 1
            body = {
                "serialNo": term.serial,
                "time": self._iso(at_ms),
                "service": service,
                "result": result,
                "durationMs": duration,
                "cardNo": card,
            }
            end = at_ms + duration
            emit(end, self._topic("terminal", term.id, "txn"), {**body, "time": self._iso(end)})
            emit(
                end, self._topic("terminal", term.id, "status"), self._term_status(term, end), True
            )

        return act

    def _refill(self, term: _Terminal) -> Any:
        def act(at_ms: int, emit: Any) -> None:
            term.paper = self.cfg.paper_sheets
            if term.faults == ["printer_jam"]:
                term.faults = []
                term.state = "ok"
            if term.online:
                emit(
                    at_ms,
                    self._topic("terminal", term.id, "status"),
                    self._term_status(term, at_ms),
                    True,
                )

        return act

    def _online(self, term: _Terminal, up: bool) -> Any:
        def act(at_ms: int, emit: Any) -> None:
            term.online = up
            body = self._term_status(term, at_ms)
            if not up:
                # What the broker publishes for the terminal's last will.
                body = {"online": False, "time": self._iso(self.start_ms)}
            emit(at_ms, self._topic("terminal", term.id, "status"), body, True)

        return act

    def _restore(self, inc: Incident) -> Any:
        def act(at_ms: int, emit: Any) -> None:
            if inc.kind == "gate_offline" and inc.device in self._gates:
                g = self._gates[inc.device]
                g.online = True
                emit(
                    at_ms,
                    self._topic("gate", g.spec.id, "status"),
                    self._gate_status(g, at_ms),
                    True,
                )
            elif inc.device in self._terms:
                term = self._terms[inc.device]
                term.state, term.faults = "ok", []
                emit(
                    at_ms,
                    self._topic("terminal", term.id, "status"),
                    self._term_status(term, at_ms),
                    True,
                )

        return act

    def _incident(self, inc: Incident) -> Any:
        def act(at_ms: int, emit: Any) -> None:
            gid = inc.device or next(iter(self._gates))
            g = self._gates.get(gid)
            if inc.kind == "terminal_fault":
                term = self._terms.get(inc.device or next(iter(self._terms)))
                if term is None:
                    return
                term.state, term.faults = "fault", ["card_reader"]
                emit(
                    at_ms,
                    self._topic("terminal", term.id, "status"),
                    self._term_status(term, at_ms),
                    True,
                )
                return
            if g is None:
                return
            if inc.kind == "gate_offline":
                g.online = False
                emit(
                    at_ms,
                    self._topic("gate", g.spec.id, "status"),
                    {"online": False, "time": self._iso(self.start_ms)},
                    True,
                )
                return
            if inc.kind == "lost_card":
                body = self._gate_event(
                    g,
                    at_ms,
                    "denied_blacklist",
                    self.lost_card,
                    personType="student",
                    verifyMode="card",
                )
            elif inc.kind == "tailgate":
                card = self.residents[0].card_no
                emit(
                    at_ms,
                    self._topic("gate", g.spec.id, "event"),
                    self._gate_event(
                        g, at_ms, "pass", card, personType="student", verifyMode="card"
                    ),
                )
                body = self._gate_event(g, at_ms + 1500, "tailgate", None)
                at_ms += 1500
            else:
                body = self._gate_event(g, at_ms, inc.kind, None)
            emit(at_ms, self._topic("gate", g.spec.id, "event"), body)

        return act
