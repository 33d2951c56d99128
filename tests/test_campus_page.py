"""The campus page in headless Chromium against the campus view run as a process
(`python -m dashboard_api.campus.cli campus`): buildings in the picker, an alert of b2 in the
list, and its acknowledge button relayed as a command to b2 with the campus user."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.mqtt.transport import Message, MqttTransport
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
TOKEN = "campus-token-0123456789"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)


def _alert(alert_id: str) -> bytes:
    alert = {
        "id": alert_id,
        "rule": "gate.forced",
        "subject": "gate-in-1",
        "severity": "critical",
        "state": "open",
        "opened_ms": 1_780_000_000_000,
        "updated_ms": 1_780_000_000_000,
        "message": "barrier forced",
    }
    transition = {"alert_id": alert_id, "action": "open", "actor": "rules", "state": "open"}
    return json.dumps({"building": "b2", "alert": alert, "transition": transition}).encode()


def _start(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard_api.campus.cli", "campus", "--config", str(cfg)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_page_lists_buildings_and_relays_acknowledge(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415

    port = free_port()
    cfg = tmp_path / "campus.yaml"
    cfg.write_text(
        f"broker: {{port: {mosquitto.port}, client_id: campus-view}}\n"
        f"port: {port}\n"
        "buildings: [b1, b2, b3]\n"
        f"users: [{{name: alice, token: {TOKEN}}}]\n"
    )
    proc = _start(cfg)
    commands: list[Message] = []
    building = MqttTransport(
        BrokerConfig(port=mosquitto.port, client_id="b2-north"),
        subscriptions=["campus/b2/cmd/alert/#"],
        on_message=commands.append,
    )
    try:
        wait_for_port(port, timeout=20)
        async with building, async_playwright() as pw:
            await building.wait_connected()
            await building.publish("campus/b2/north/online", b"true", retain=True)
            await building.publish("campus/b2/alert/gate.forced", _alert("al-42"))
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("dialog", lambda d: asyncio.ensure_future(d.accept(TOKEN)))
                await page.goto(f"http://127.0.0.1:{port}/")
                await expect(page.locator("#picker button")).to_have_count(4)
                await expect(page.locator("#picker button", has_text="b2 (1)")).to_be_visible()
                row = page.locator("#alerts tr", has_text="gate.forced")
                await expect(row).to_have_count(1)
                await row.locator("button", has_text="acknowledge").click()
                for _ in range(200):
                    if commands:
                        break
                    await asyncio.sleep(0.05)
                assert errors == []
            finally:
                await browser.close()
    finally:
        proc.terminate()
        proc.wait(15)
    (cmd,) = commands
    assert cmd.topic == "campus/b2/cmd/alert/al-42/acknowledge"
    assert json.loads(cmd.payload)["actor"] == "alice"
