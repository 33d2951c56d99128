"""Runs a scenario file: device inputs on a virtual clock through decoding, the store and the
rule engine, then compares the alerts raised with those expected.

Scenario file (YAML):

    name: fire door held open
    start: "2026-11-26T20:00:00"       # building-local time
    rules: [door.held_open]            # rules checked (the others are off); default: all
    tick_s: 1                          # virtual seconds between timer checks
    config: {overrides: {...}}         # extra `rules:` configuration
    residents:
      roster: [{card: "3071000001", room: "312", name: "张三"}]
      leave: [{card: "3071000001", from: "2026-11-26T08:00", to: "2026-11-28T08:00"}]
    steps:                             # `at`: seconds after start, or "HH:MM[:SS]" (next one)
      - {at: 10, safety: safety-3, fire_door: 1}
      - {at: 0, every: 30, until: 300, gate_status: gate-1}      # repeated
      - {at: 40, restart: {down_s: 20}}                          # stop the engine, restart
    until: 400                         # end of the run (seconds after start)
    expect:                            # each must be matched, once
      - {rule: door.held_open, subject: safety-3, at: 70, tolerance_s: 2, severity: warning}
      - {rule: door.held_open, action: update, severity: critical, at: 310}
    forbid:                            # none of these may happen
      - {rule: resident.not_returned}

Every `open` of a checked rule must match an `expect` entry: anything else is a mismatch.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.clock import ManualClock
from gateway.config.rules import RulesConfig
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import Catalog, DeviceStatus, Event, Reading
from gateway.privacy import Pseudonymizer
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from rules.alerts import Change
from rules.engine import Engine
from rules.residents_io import LeaveRow, ResidentRow, import_rows
from rules.runner import RuleRunner
from rules.spec import build_specs
from simulators.scenarios.building import BUILDING, LANES, TIMEZONE, standard_catalog
from simulators.scenarios.inputs import ScenarioInputs

SCENARIO_KEY = b"scenario-key-0123456789abcdef"


class ScenarioError(ValueError):
    """The scenario file itself is wrong (not a mismatch)."""


@dataclass(slots=True)
class Outcome:
    name: str
    path: str
    expected: list[dict[str, Any]]
    raised: list[Change]
    problems: list[str] = field(default_factory=list)
    start_ms: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        lines = [f"{'PASS' if self.ok else 'FAIL'} {self.name} ({self.path})"]
        for e in self.expected:
            lines.append(
                "  expected {action} {rule} {subject} at +{at}s ±{tol}s {sev}".format(
                    action=e.get("action", "open"),
                    rule=e["rule"],
                    subject=e.get("subject", "*"),
                    at=f"{e['at_s']:g}" if "at_s" in e else "?",
                    tol=e.get("tolerance_s", 2),
                    sev=e.get("severity", ""),
                ).rstrip()
            )
        for c in self.raised:
            if c.transition.actor != "system":
                continue
            rel = (c.transition.ts_ms - self.start_ms) / 1000
            lines.append(
                f"  raised   {c.transition.action} {c.alert.rule} {c.alert.subject} "
                f"at +{rel:g}s {c.alert.severity}"
            )
        lines += [f"  MISMATCH {p}" for p in self.problems]
        return "\n".join(lines)


def _at_seconds(raw: Any, start: datetime) -> float:
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw)
    if ":" not in text:
        return float(text)
    parts = [int(p) for p in text.split(":")]
    hh, mm, ss = [*parts, 0, 0][:3]
    t = start.replace(hour=hh, minute=mm, second=ss, microsecond=0)
    day = 0
    while t + timedelta(days=day) < start:
        day += 1
    return (t + timedelta(days=day) - start).total_seconds()


def _expand(
    steps: list[dict[str, Any]], start: datetime
) -> list[tuple[float, int, dict[str, Any]]]:
    out: list[tuple[float, int, dict[str, Any]]] = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or "at" not in step:
            raise ScenarioError(f"step {i + 1} needs an `at`: {step}")
        at = _at_seconds(step["at"], start)
        if "every" in step:
            every = float(step["every"])
            until = _at_seconds(step.get("until", at), start)
            t = at
            while t <= until:
                out.append((t, i, step))
                t += every
        else:
            out.append((at, i, step))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def _matches(e: dict[str, Any], c: Change, start_ms: int, *, timed: bool) -> bool:
    if c.alert.rule != e["rule"] or c.transition.action != e.get("action", "open"):
        return False
    if "subject" in e and c.alert.subject != str(e["subject"]):
        return False
    if "severity" in e and str(c.transition.severity) != e["severity"]:
        return False
    if timed and "at" in e:
        rel = (c.transition.ts_ms - start_ms) / 1000
        if abs(rel - float(e["at_s"])) > float(e.get("tolerance_s", 2)):
            return False
    return True


@dataclass(slots=True)
class _Run:
    clock: ManualClock
    store: Store
    catalog: Catalog
    runner: RuleRunner | None = None
    down_until_ms: int | None = None
    raised: list[Change] = field(default_factory=list)


class Scenario:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ScenarioError(f"{path}: not a YAML mapping")
        self.doc = doc
        self.name = str(doc.get("name", path.stem))
        self.tz = ZoneInfo(TIMEZONE)
        self.start = datetime.fromisoformat(str(doc.get("start", "2026-11-26T20:00:00")))
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=self.tz)
        self.start_ms = int(self.start.timestamp() * 1000)
        self.steps = _expand(list(doc.get("steps") or []), self.start)
        self.until = _at_seconds(
            doc.get("until", self.steps[-1][0] if self.steps else 0), self.start
        )
        self.tick_ms = int(float(doc.get("tick_s", 1)) * 1000)
        self.expect = [self._expectation(e) for e in doc.get("expect") or []]
        self.forbid = [dict(e) for e in doc.get("forbid") or []]
        cfg: dict[str, Any] = {"lanes": [lane.model_dump() for lane in LANES], "snapshot_s": 86400}
        cfg.update(doc.get("config") or {})
        base = RulesConfig.model_validate(cfg)
        all_ids = [s.id for s in build_specs(base)]
        self.checked = list(doc.get("rules") or all_ids)
        unknown = [r for r in self.checked if r not in all_ids]
        if unknown:
            raise ScenarioError(f"{path}: unknown rules {unknown}")
        overrides = dict(cfg.get("overrides") or {})
        for rid in all_ids:
            if rid not in self.checked:
                overrides[rid] = {**overrides.get(rid, {}), "enabled": False}
        cfg["overrides"] = overrides
        self.config = RulesConfig.model_validate(cfg)
        for e in [*self.expect, *self.forbid]:
            if e.get("rule") not in self.checked:
                raise ScenarioError(f"{path}: {e} names a rule that is not checked")

    def _expectation(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict) or "rule" not in raw:
            raise ScenarioError(f"{self.path}: an expectation needs a `rule`: {raw}")
        e = dict(raw)
        if "at" in e:
            e["at_s"] = _at_seconds(e["at"], self.start)
        return e

    async def run(self, workdir: Path) -> Outcome:
        clock = ManualClock(self.start_ms)
        catalog = standard_catalog()
        pseudo = Pseudonymizer(SCENARIO_KEY)
        inputs = ScenarioInputs(BUILDING, TIMEZONE, catalog, pseudo)
        storage = StorageConfig(path=workdir / "scenario.sqlite", batch_linger_ms=0)
        store = await Store.open(storage, clock, Metrics())
        try:
            await self._residents(store, pseudo, clock)
            run = _Run(clock, store, catalog)
            await self._start(run)
            for at, _, step in self.steps:
                await self._advance(run, self.start_ms + int(at * 1000))
                if "restart" in step:
                    if run.runner is not None:
                        await run.runner.flush()
                    run.runner = None
                    down_s = float((step.get("restart") or {}).get("down_s", 0))
                    run.down_until_ms = clock.now_ms() + int(down_s * 1000)
                    await self._advance(run, clock.now_ms())
                    continue
                items = inputs.convert(step, clock.now_ms())
                await store.commit(_batch(items))
                if run.runner is None:
                    continue  # stopped: events wait in the store, readings are lost
                run.raised += await run.runner.feed(
                    [i for i in items if isinstance(i, Reading | DeviceStatus)]
                )
                run.raised += await run.runner.pull_events()
            await self._advance(run, self.start_ms + int(self.until * 1000))
            if run.runner is not None:
                await run.runner.flush()
        finally:
            await store.close()
        return self._judge(run.raised)

    async def _start(self, run: _Run) -> None:
        engine = Engine(self.config, catalog=run.catalog, timezone=TIMEZONE, clock=run.clock)
        runner = RuleRunner(
            engine,
            store=run.store,
            bus=None,
            clock=run.clock,
            config=self.config,
            building=BUILDING,
        )
        run.raised += await runner.start()
        run.runner = runner
        run.down_until_ms = None

    async def _advance(self, run: _Run, target: int) -> None:
        """Tick the virtual clock up to `target`; a stopped engine restarts when due."""
        clock = run.clock
        while True:
            if run.down_until_ms is not None and clock.now_ms() >= run.down_until_ms:
                await self._start(run)
            if clock.now_ms() >= target:
                return
            nxt = min(clock.now_ms() + self.tick_ms, target)
            if run.down_until_ms is not None:
                nxt = min(nxt, run.down_until_ms)
            clock.set_ms(nxt)
            if run.runner is not None:
                run.raised += await run.runner.tick()

    async def _residents(self, store: Store, pseudo: Pseudonymizer, clock: ManualClock) -> None:
        res = self.doc.get("residents") or {}
        roster = [
            ResidentRow(str(r["card"]), str(r["room"]), str(r.get("name", "")), {})
            for r in res.get("roster") or []
        ]
        leave = [
            LeaveRow(str(r["card"]), str(r["from"]), str(r["to"])) for r in res.get("leave") or []
        ]
        if roster or leave:
            await import_rows(store, pseudo, TIMEZONE, roster, leave, now_ms=clock.now_ms())

    def _judge(self, raised: list[Change]) -> Outcome:
        outcome = Outcome(self.name, str(self.path), self.expect, raised, start_ms=self.start_ms)
        system = [c for c in raised if c.transition.actor == "system"]
        used: set[int] = set()
        for e in self.expect:
            hit = next(
                (
                    i
                    for i, c in enumerate(system)
                    if i not in used and _matches(e, c, self.start_ms, timed=True)
                ),
                None,
            )
            if hit is None:
                outcome.problems.append(f"expected but not raised: {_describe(e)}")
            else:
                used.add(hit)
        for i, c in enumerate(system):
            if i in used or c.transition.action != "open" or c.alert.rule not in self.checked:
                continue
            outcome.problems.append(
                f"raised but not expected: open {c.alert.rule} {c.alert.subject} at "
                f"+{(c.transition.ts_ms - self.start_ms) / 1000:g}s"
            )
        for f in self.forbid:
            for c in system:
                if _matches(f, c, self.start_ms, timed=False):
                    outcome.problems.append(f"forbidden but raised: {_describe(f)}")
                    break
        return outcome


def _describe(e: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in e.items() if k != "at_s")


def _batch(items: list[Any]) -> WriteBatch:
    b = WriteBatch()
    for item in items:
        if isinstance(item, Reading):
            b.readings.append(item)
        elif isinstance(item, Event):
            b.events.append(item)
        else:
            b.statuses.append(item)
    return b


@contextlib.asynccontextmanager
async def _workdir() -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="scenario-") as d:
        yield Path(d)


async def run_file(path: Path) -> Outcome:
    scenario = Scenario(path)
    async with _workdir() as d:
        return await scenario.run(d)


def scenario_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def builtin_dir() -> Path:
    return Path(__file__).parent / "files"
