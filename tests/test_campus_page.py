"""The campus page in headless Chromium against the campus view run as a process
(`python -m dashboard_api.campus.cli campus`): buildings in the picker, an alert of b2 in the
list, and its acknowledge button relayed as a command to b2 with the campus user. New alerts
and state changes show without reload through the live stream: the page's timers are frozen,
so no poll can be what shows them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.mqtt.transport import Message, MqttTransport
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import free_port, wait_for_port
from tests.test_campus_stream import alert_doc

CHROMIUM = "/usr/bin/chromium"
TOKEN = "campus-token-0123456789"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)


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
            await building.publish("campus/b2/alert/gate.forced", alert_doc("al-42"))
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("dialog", lambda d: asyncio.ensure_future(d.accept(TOKEN)))
                # The page's timers never fire from here on: what changes, the stream brought.
                start = datetime.now(UTC)
                await page.clock.install(time=start)
                await page.clock.pause_at(start.timestamp() + 1)
                await page.goto(f"http://127.0.0.1:{port}/")
                await expect(page.locator("#picker button")).to_have_count(4)
                await expect(page.locator("#picker button", has_text="b2 (1)")).to_be_visible()
                b2_cell = page.get_by_role("cell", name="b2", exact=True)
                row = page.locator("#alerts tr", has_text="gate.forced").filter(has=b2_cell)
                await expect(row).to_have_count(1)
                await expect(page.locator("#live")).to_have_text("live")

                latencies = []
                for n in range(5):
                    message = f"barrier forced at lane {n}"
                    t0 = time.monotonic()
                    await building.publish(
                        "campus/b3/alert/gate.forced",
                        alert_doc(f"al-b3-{n}", b="b3", message=message),
                    )
                    await expect(page.locator("#alerts tr", has_text=message)).to_have_count(
                        1, timeout=2000
                    )
                    latencies.append(time.monotonic() - t0)
                await expect(page.locator("#picker button", has_text="b3 (5)")).to_be_visible()
                print(f"publish -> page: median {statistics.median(latencies) * 1000:.0f} ms")

                await row.locator("button", has_text="acknowledge").click()
                for _ in range(200):
                    if commands:
                        break
                    await asyncio.sleep(0.05)
                # The building's answer: the new state, shown without reload.
                acked = alert_doc("al-42", "acknowledged", 1_780_000_001_000)
                await building.publish("campus/b2/alert/gate.forced", acked)
                await expect(row.locator("td", has_text="acknowledged")).to_have_count(
                    1, timeout=2000
                )
                await expect(row.locator("button", has_text="acknowledge")).to_have_count(0)
                assert errors == []
                # SIGTERM while the page's stream is open: the view still stops (the stream is
                # cut after uvicorn's 5 s grace), well within systemd's TimeoutStopSec.
                proc.terminate()
                proc.wait(12)
            finally:
                await browser.close()
    finally:
        proc.terminate()
        proc.wait(15)
    (cmd,) = commands
    assert cmd.topic == "campus/b2/cmd/alert/al-42/acknowledge"
    assert json.loads(cmd.payload)["actor"] == "alice"
