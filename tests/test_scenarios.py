"""Every scenario file runs through decoding, the store and the engine, and passes; every
catalogue rule has at least one positive and one negative scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config.rules import RulesConfig
from rules.spec import build_specs
from simulators.scenarios.runner import Scenario, ScenarioError, builtin_dir

FILES = sorted(builtin_dir().glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_scenario_passes(path: Path, tmp_path: Path) -> None:
    outcome = await Scenario(path).run(tmp_path)
    assert outcome.ok, outcome.report()


def test_every_catalogue_rule_has_positive_and_negative_scenarios() -> None:
    positive: set[str] = set()
    negative: set[str] = set()
    for path in FILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        positive |= {
            e["rule"] for e in doc.get("expect") or [] if e.get("action", "open") == "open"
        }
        negative |= {e["rule"] for e in doc.get("forbid") or []}
    catalogue = {s.id for s in build_specs(RulesConfig())}
    assert catalogue - positive == set()
    assert catalogue - negative == set()


async def test_a_wrong_expectation_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "rules: [gate.tailgate]\n"
        "steps:\n  - {at: 5, gate: gate-1, event: tailgate, direction: in}\n"
        "until: 10\n"
        "expect:\n  - {rule: gate.tailgate, at: 8, tolerance_s: 1}\n",
        encoding="utf-8",
    )
    outcome = await Scenario(path).run(tmp_path)
    assert not outcome.ok
    assert any("expected but not raised" in p for p in outcome.problems)
    assert any("raised but not expected" in p for p in outcome.problems)


def test_a_scenario_naming_an_unknown_device_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rules: [nope.rule]\nsteps: []\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="unknown rules"):
        Scenario(path)
