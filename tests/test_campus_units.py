"""The campus view's pure parts (state from northbound topics, configuration loading) and
its command line serving for real."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dashboard_api.campus.cli import CampusConfigError, load_campus_config, register
from dashboard_api.campus.state import CampusState
from gateway.commands import Commands
from tests.fixtures.net import free_port, wait_for_port


def _alert(b: str, alert_id: str, state: str, updated: int, sev: str = "warning") -> bytes:
    doc = {
        "building": b,
        "alert": {
            "id": alert_id,
            "rule": "gate.forced",
            "state": state,
            "severity": sev,
            "opened_ms": 1,
            "updated_ms": updated,
        },
        "transition": {"action": state, "actor": "x"},
    }
    return json.dumps(doc).encode()


def test_state_keeps_latest_alert_and_counts_rejections() -> None:
    s = CampusState(["b1"], keep_resolved=1)
    assert s.apply("campus/b2/alert/gate.forced", _alert("b2", "a1", "open", 10, "critical"), 5)
    assert s.apply("campus/b2/alert/gate.forced", _alert("b2", "a1", "acknowledged", 20), 6)
    assert s.apply("campus/b2/alert/gate.forced", _alert("b2", "a1", "open", 10), 7)  # stale
    assert s.building("b2").alerts["a1"]["state"] == "acknowledged"
    assert s.building("b2").last_seen_ms == 7
    assert s.apply("campus/b2/north/status/gate-1", b'{"online": true}', 8)
    assert s.apply("campus/b2/north/online", b"true", 8)
    assert s.apply("campus/b2/north/kpi", b'{"open_alerts": 1}', 8)
    assert not s.apply("campus/b2/alert/x", b"not json", 9)
    assert not s.apply("campus/b2/north/whatever/x/y", b"{}", 9)
    assert not s.apply("elsewhere/b2", b"{}", 9)
    assert s.rejected == 3
    kpis = s.campus_kpis()
    assert kpis == {
        "buildings": 2,
        "buildings_online": 1,
        "devices_total": 1,
        "devices_online": 1,
        "open_alerts": 1,
        "critical_open": 0,
    }
    for i in range(3):
        s.apply("campus/b1/alert/r", _alert("b1", f"r{i}", "resolved", 100 + i), 9)
    assert [a["id"] for a in s.alerts("b1")] == ["r2"]  # only the newest resolved one kept


def test_config_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text("users:\n  - name: alice\n    token: short\n")
    with pytest.raises(CampusConfigError, match=r"campus.yaml:3: users\[0\]\.token"):
        load_campus_config(path)
    path.write_text("users:\n  - name: alice\n    token: ${CAMPUS_TOKEN_T}\n")
    monkeypatch.delenv("CAMPUS_TOKEN_T", raising=False)
    with pytest.raises(CampusConfigError, match="CAMPUS_TOKEN_T is not set"):
        load_campus_config(path)
    monkeypatch.setenv("CAMPUS_TOKEN_T", "t" * 20)
    assert load_campus_config(path).users[0].token.get_secret_value() == "t" * 20


def test_command_is_registered() -> None:
    parser = argparse.ArgumentParser()
    top = parser.add_subparsers(dest="command")
    register(Commands(top=top, simulate=top))
    args = parser.parse_args(["campus", "--config", "x.yaml", "--check"])
    assert args.check
    assert args.func.__name__ == "cmd_campus"


def test_cli_serves_the_campus_api(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "campus.yaml"
    path.write_text(
        f"broker: {{port: {free_port()}, client_id: cv-test}}\n"
        f"port: {port}\n"
        "users: [{name: alice, token: campus-token-0123456789}]\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard_api.campus.cli", "campus", "--config", str(path)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=20)
        r = httpx.get(f"http://127.0.0.1:{port}/api/campus/v1/buildings")
        assert r.status_code == 401
        ok = httpx.get(
            f"http://127.0.0.1:{port}/api/campus/v1/buildings",
            headers={"Authorization": "Bearer campus-token-0123456789"},
        )
        assert ok.status_code == 200
        assert ok.json()["campus"]["buildings"] == 0
    finally:
        proc.terminate()
        t0 = time.monotonic()
        proc.wait(15)
        assert time.monotonic() - t0 < 15


def test_snapshot_merges_and_closes_what_it_no_longer_lists() -> None:
    s = CampusState()
    s.apply("campus/b1/alert/r", _alert("b1", "a1", "open", 10), 1)
    s.apply("campus/b1/alert/r", _alert("b1", "a2", "open", 10), 1)
    a3 = json.loads(_alert("b1", "a3", "acknowledged", 30))["alert"]
    snap = {"building": "b1", "ts_ms": 40, "alerts": [a3]}
    assert s.apply("campus/b1/north/alerts", json.dumps(snap).encode(), 2)
    states = {a["id"]: a["state"] for a in s.alerts("b1")}
    assert states == {"a1": "resolved", "a2": "resolved", "a3": "acknowledged"}
    late = json.loads(_alert("b1", "a4", "open", 50))["alert"]
    s.apply("campus/b1/alert/r", _alert("b1", "a4", "open", 50), 3)
    old = {"building": "b1", "ts_ms": 45, "alerts": [a3]}  # taken before a4 was raised
    s.apply("campus/b1/north/alerts", json.dumps(old).encode(), 4)
    assert s.building("b1").alerts["a4"]["state"] == late["state"] == "open"
    assert len(s.building("b1").alerts["a4"]["transitions"]) == 1
