"""The `campus-edge` command line: check-config, schema, dead-letters, help, registrars."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.cli import build_parser, main
from gateway.clock import SystemClock
from gateway.config.loader import load_config
from gateway.metrics import Metrics
from gateway.model import DeadLetter
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from tests.fixtures.gateway_proc import CARD_KEY, write_config

GOOD = f"""\
building:
  id: b07
  name: Dorm 7
  floors: 6
privacy:
  card_key: {CARD_KEY}
rules:
  enabled: false
"""


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_check_config_ok_prints_a_one_line_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "b07.yaml"
    path.write_text(GOOD + "log:\n  format: json\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{path}: ok: building b07, 0 devices; enabled: ")
    assert "rules" not in out[0]


def test_check_config_reports_every_error_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "b07.yaml"
    path.write_text(GOOD.replace("floors: 6", "floors: lots") + "log:\n  format: xml\n")
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: 2 configuration errors:" in captured.err
    assert f"{path}:4: building.floors: expected a valid integer" in captured.err
    assert f"{path}:10: log.format: expected one of 'json' or 'console'; found 'xml'" in (
        captured.err
    )


def test_check_config_as_a_process(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    done = run_cli("check-config", str(good))
    assert done.returncode == 0, done.stderr
    assert "ok: building b07" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("building: [\n")
    done = run_cli("check-config", str(bad))
    assert done.returncode == 2
    assert f"{bad}:2: YAML syntax error" in done.stderr


def test_schema_is_the_json_schema_of_the_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "GatewayConfig"
    assert {"building", "privacy", "log", "storage", "mqtt", "modbus"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"building", "privacy"}
    building = schema["$defs"]["BuildingConfig"]
    assert building["properties"]["id"]["pattern"] == "^[a-z0-9-]{1,32}$"
    assert "IANA time zone" in building["properties"]["timezone"]["description"]


def test_help_lists_the_commands_without_heavy_imports() -> None:
    code = textwrap.dedent(
        """
        import sys, contextlib, io
        from gateway.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main(["--help"])
            except SystemExit as e:
                assert e.code == 0
        heavy = sorted(m for m in ("cv2", "uvicorn", "fastapi", "influxdb_client")
                       if m in sys.modules)
        print(heavy)
        print(out.getvalue())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    first, _, rest = done.stdout.partition("\n")
    assert first == "[]", f"imported at CLI start: {first}"
    for command in ("run", "check-config", "schema", "dead-letters", "simulate"):
        assert command in rest


def test_no_command_shows_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: campus-edge" in capsys.readouterr().err
    assert main(["simulate"]) == 2


def test_registrars_add_commands() -> None:
    parser = build_parser()
    top = next(a for a in parser._actions if a.dest == "command")
    assert {"run", "check-config", "schema", "dead-letters", "simulate"} <= set(
        top.choices  # type: ignore[arg-type]
    )


def test_dead_letters_lists_letters_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    path = write_config(tmp_path)
    config = load_config(path)

    async def fill() -> None:
        store = await Store.open(config.storage, SystemClock(), Metrics())
        letters = [
            DeadLetter(1_000, "mqtt", "g1", "campus/t01/gate/g1/event", b"{not json", "bad JSON"),
            DeadLetter(2_000, "mqtt", "g1", "campus/t01/gate/g1/event", b"{}", "no serialNo"),
            DeadLetter(3_000, "mqtt", None, "campus/t01/gate/zz/event", b"{}", "unknown gate"),
        ]
        try:
            await store.commit(WriteBatch(dead_letters=letters))
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["dead-letters", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  g1: 2" in out
    assert "  (unknown device): 1" in out
    assert "reason='no serialNo'" in out
    assert "payload='{not json'" in out
    assert main(["dead-letters", "--config", str(path), "--device", "g1", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert len([ln for ln in out.splitlines() if ln.startswith("#")]) == 1
    assert "unknown gate" not in out


def test_dead_letters_without_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    assert main(["dead-letters", "--config", str(path)]) == 1
    assert "no store at" in capsys.readouterr().err


def test_users_passwd_disable_enable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard_api.auth import Accounts  # noqa: PLC0415

    path = str(write_config(tmp_path, {"api": {"enabled": True}}))
    first = "the first password"

    def users(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["users", *args, "--config", path])
        out, err = capsys.readouterr()
        return code, out, err

    for name, role in (("chief", "admin"), ("guard", "operator")):
        code, _, err = users("add", "--name", name, "--role", role, "--password-stdin", stdin=first)
        assert code == 0, err
    code, out, _ = users("passwd", "--name", "guard")
    assert code == 0
    assert "password of guard changed" in out
    generated = next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("password: "))
    code, _, err = users("passwd", "--name", "guard", "--password-stdin", stdin="short\n")
    assert (code, err.strip()) == (
        1,
        "campus-edge users passwd: a password needs at least 12 characters",
    )
    code, _, err = users("passwd", "--name", "ghost", "--password-stdin", stdin=first)
    assert (code, err.strip()) == (1, "campus-edge users passwd: no user 'ghost'")
    code, _, err = users("disable", "--name", "chief")
    assert code == 1
    assert "'chief' is the last enabled admin" in err
    assert users("disable", "--name", "ghost")[0] == 1
    assert users("disable", "--name", "guard")[:2] == (0, "user guard disabled\n")
    assert "guard\toperator (disabled)" in users("list")[1]

    config = load_config(Path(path))

    async def logins() -> tuple[list[bool], list[tuple[str, str, str]]]:
        store = await Store.open(config.storage, SystemClock(), Metrics())
        try:
            accounts = Accounts(store, SystemClock(), session_ttl_s=60, max_failures=9, window_s=60)
            ok = []
            for password in (generated, first):
                try:
                    await accounts.login("guard", password, "test")
                    ok.append(True)
                except PermissionError:
                    ok.append(False)
            log = await store.audit_log()
            assert not [r for r in log if generated in str(r) or first in str(r)]
            return ok, [(r.actor, r.action, r.target) for r in log]
        finally:
            await store.close()

    assert asyncio.run(logins())[0] == [False, False]  # disabled: not even the right password
    assert users("enable", "--name", "guard")[:2] == (0, "user guard enabled\n")
    ok, trail = asyncio.run(logins())
    assert ok == [True, False]
    for action in ("user.password", "user.disable", "user.enable"):
        assert ("cli", action, "guard") in trail
