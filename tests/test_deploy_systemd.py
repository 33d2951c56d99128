"""The systemd unit: `systemd-analyze verify` finds nothing, and its hardening scores well."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
UNIT = DEPLOY / "campus-edge.service"
INSTALLED = "/opt/campus-edge/venv/bin/campus-edge"


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze missing: apt-get install systemd")
    # verify checks that ExecStart= exists: point it at this checkout's console script
    script = Path(sys.executable).parent / "campus-edge"
    if not script.exists():
        pytest.skip(f"{script} missing: pip install -e . first")
    text = UNIT.read_text().replace(INSTALLED, str(script))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_unit_verifies_without_warnings(unit: Path) -> None:
    result = analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings


def test_verify_would_catch_a_mistake(unit: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key" in analyze("verify", str(broken)).stderr


def test_unit_is_hardened(unit: Path) -> None:
    text = UNIT.read_text()
    for line in (
        "User=campus-edge",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/campus-edge",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "Type=notify",
        "WatchdogSec=",
    ):
        assert line in text, line
    result = analyze("security", "--offline=yes", str(unit))
    last = [ln for ln in result.stdout.splitlines() if "Overall exposure level" in ln]
    assert last, result.stdout + result.stderr
    score = float(last[-1].split(":")[-1].split()[0])
    assert score <= 2.0, last[-1]


def test_sysusers_entry_names_the_service_user() -> None:
    line = next(
        ln
        for ln in (DEPLOY / "campus-edge.sysusers.conf").read_text().splitlines()
        if ln.startswith("u ")
    )
    assert line.split()[1] == "campus-edge"
