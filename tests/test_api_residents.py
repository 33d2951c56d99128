"""The residents directory read from the rule engine's tables in a real store."""

from __future__ import annotations

import json
from pathlib import Path

from dashboard_api.residents import SqlResidents
from gateway.clock import ManualClock
from gateway.metrics import Metrics
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from tests.test_api_harness import START_MS, alert, make_config, opening

A, B, C = (f"p:{c * 32}" for c in "abc")


async def test_roster_presence_and_rates(tmp_path: Path) -> None:
    store = await Store.open(
        make_config(tmp_path).storage, ManualClock(START_MS), Metrics(), retention_loop=False
    )
    try:
        directory = SqlResidents(store)
        assert await directory.roster() is None
        assert await directory.presence(START_MS - 3_600_000, START_MS) is None
        presence = {
            "last": {A: ["in", START_MS - 5000], B: ["out", START_MS - 4000]},
            "free": {},
            "last_free_ms": START_MS - 4500,
        }
        missing = alert(1, rule="resident.not_returned", subject=B, opened_ms=START_MS - 1000)
        late = alert(2, rule="resident.late_return", subject=A, opened_ms=START_MS - 2000)
        await store.commit(
            WriteBatch(
                alerts=[missing, late],
                transitions=[opening(missing), opening(late)],
                sql=[
                    (
                        "INSERT INTO residents (pseudonym, room, name, imported_ms)"
                        " VALUES (?, ?, ?, ?)",
                        [(A, "301", "张三", 0), (B, "301", "", 0), (C, "302", "李四", 0)],
                    ),
                    (
                        "INSERT INTO rules_state (rule_id, state, updated_ms) VALUES (?, ?, ?)",
                        [("_presence", json.dumps(presence), START_MS)],
                    ),
                ],
            )
        )
        roster = {r.subject: r for r in await directory.roster() or []}
        # A passed in before the last free-mode moment: unknown; B's passage came after it.
        assert (roster[A].present, roster[B].present, roster[C].present) == (None, False, None)
        assert roster[A].name == "张三"
        assert roster[B].name is None
        p = await directory.presence(START_MS - 3_600_000, START_MS)
        assert p is not None
        assert (p.residents_total, p.residents_in, p.late_returns_today) == (3, 0, 1)
        assert p.return_rate == 1 - 1 / 3
        assert await directory.name_of(C) == "李四"
        assert await directory.name_of("p:nobody") is None
    finally:
        await store.close()
