"""Schemathesis fuzzes every operation of the OpenAPI description against a live server: no
request may cause a server error, and answers must match the description."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from dashboard_api.auth import Role
from gateway.model import Severity
from tests.test_api_harness import alert, running_api

ST = Path(sys.executable).with_name("schemathesis")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHECKS = os.environ.get("API_FUZZ_CHECKS", "not_a_server_error,response_schema_conformance")
# Quick by default (CI budget: about 30 s, as admin, who reaches every operation). A deep run:
# API_FUZZ_EXAMPLES=30 API_FUZZ_PHASES=coverage,fuzzing,stateful API_FUZZ_ROLES=admin,viewer
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
PHASES = os.environ.get("API_FUZZ_PHASES", "fuzzing")
ROLES = [Role(r) for r in os.environ.get("API_FUZZ_ROLES", "admin").split(",")]

pytestmark = pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed")


async def _fuzz(base: str, token: str, report: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{base}/api/v1/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        PHASES,
        "--generation-deterministic",
        "--exclude-path",
        "/api/v1/stream",
        "--exclude-path",
        "/api/v1/auth/logout",
        "-H",
        f"Authorization: Bearer {token}",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        "--request-timeout",
        "20",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.parametrize("role", ROLES)
async def test_no_server_errors(tmp_path: Path, role: Role) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_api(tmp_path, login={"max_failures": 2, "window_s": 60}) as api:
        for n, sev in enumerate(Severity):
            await api.add_alert(alert(n, severity=sev), publish=False)
        code, out = await _fuzz(api.base, api.tokens[role], ARTIFACTS / f"schemathesis-{role}.xml")
        (ARTIFACTS / f"schemathesis-{role}.txt").write_text(out)
        assert code == 0, out[-6000:]
