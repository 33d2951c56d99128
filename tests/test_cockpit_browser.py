"""The cockpit page in headless Chromium (Debian's /usr/bin/chromium via Playwright): log in,
see a new alert appear live, acknowledge and resolve it; screenshots go to tests/artifacts/."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from dashboard_api.residents import Resident
from gateway.bus import Stream
from gateway.model import AlertState, DeviceStatus, Event, Reading, Severity
from gateway.storage.batch import WriteBatch
from tests.test_api_harness import PASSWORD, START_MS, Api, alert, running_api

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
HOUR = 3_600_000

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (make debs)"
)


async def _seed(api: Api) -> None:
    rng = random.Random(7)
    cat = api.runtime.catalog
    start = START_MS - 24 * HOUR
    readings = []
    for d in cat.devices.values():
        if d.metrics:
            base = rng.uniform(40, 200)
            for i in range(0, 24 * 60, 5):
                ts = start + i * 60_000
                hour = (ts // HOUR + 8) % 24
                evening = 1.8 if 18 <= hour <= 23 else 1.0
                readings.append(Reading(d.id, "power", ts, base * evening + rng.uniform(0, 60)))
    events = []
    n = 0
    for h in range(24):
        local = (start // HOUR + h + 8) % 24
        busy = 60 if local in (7, 8, 12, 17, 18, 21, 22) else (5 if local < 6 else 25)
        for _ in range(rng.randint(busy // 2, busy)):
            n += 1
            ts = start + h * HOUR + rng.randint(0, HOUR - 1)
            events.append(
                Event(f"gate-in-1:{n}", "gate-in-1", "gate.pass", ts, ts, {"direction": "in"})
            )
    statuses = [
        DeviceStatus(
            d,
            START_MS - 60_000,
            d not in ("cam-3", "meter-402"),
            "normal" if d.startswith("gate") else None,
        )
        for d in cat.devices
    ]
    await api.runtime.store.commit(WriteBatch(readings=readings, events=events, statuses=statuses))
    seeded = [
        alert(1, rule="door.held_open", subject="safety-4", opened_ms=START_MS - 25 * 60_000),
        alert(
            2, rule="power.illegal_appliance", subject="meter-502", opened_ms=START_MS - 3 * 60_000
        ),
        alert(
            3,
            rule="camera.tamper",
            subject="cam-3",
            opened_ms=START_MS - 40 * 60_000,
            state=AlertState.ACKNOWLEDGED,
            data={"snapshot": "cam-3.jpg"},
        ),
        alert(
            4,
            rule="resident.late_return",
            subject="p:dddddddddddddddddddddddddddddddd",
            severity=Severity.INFO,
            opened_ms=START_MS - 5 * 60_000,
            receivers=("counsellor",),
        ),
        alert(
            5,
            rule="gate.tailgate",
            subject="gate-in-2",
            opened_ms=START_MS - 9 * HOUR,
            state=AlertState.RESOLVED,
        ),
    ]
    for a in seeded:
        await api.add_alert(a, publish=False)
    api.residents.residents[:] = [
        Resident(f"p:{i:032x}", f"{i // 4 % 6 + 1}{i % 20 + 1:02d}", None, i % 10 != 0)
        for i in range(480)
    ]
    api.clock.advance(3)  # past the KPI cache


async def test_login_live_alert_acknowledge_resolve(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415

    ARTIFACTS.mkdir(exist_ok=True)
    async with running_api(tmp_path, rules=True) as api, async_playwright() as pw:
        await _seed(api)
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(api.base + "/")
            await page.wait_for_url("**/login")
            await page.fill("#name", "operator1")
            await page.fill("#password", "wrong password")
            await page.click("#login-button")
            await expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
            await page.fill("#password", PASSWORD)
            await page.click("#login-button")
            await page.wait_for_url(api.base + "/")
            await page.wait_for_selector("body[data-ready='1']")
            await expect(page.locator("#queue .alert")).to_have_count(4)
            await expect(page.locator("#live")).to_have_text("实时")

            # A gate reports a forced passage: the real rule engine raises a critical alert that
            # appears without reloading, within 2 s.
            ev = Event(
                "gate-in-1:9001",
                "gate-in-1",
                "gate.forced",
                START_MS,
                START_MS,
                {"direction": "in"},
            )
            t0 = time.monotonic()
            await api.runtime.store.commit(WriteBatch(events=[ev]))
            await api.runtime.bus.publish(Stream.EVENTS, ev)
            item = page.locator("#queue .alert.critical.open")
            await item.wait_for(state="visible", timeout=2000)
            appeared_s = time.monotonic() - t0
            assert appeared_s < 2.0
            alert_id = await item.get_attribute("data-id")
            assert alert_id is not None
            item = page.locator(f"#queue .alert[data-id='{alert_id}']")
            await expect(item.locator(".rule")).to_have_text("闯闸/翻越/反向")
            await expect(item).to_have_class("alert critical open")
            await page.screenshot(path=str(ARTIFACTS / "cockpit.png"), full_page=True)

            await item.locator("button.ack").click()
            await expect(item).to_have_class("alert critical acknowledged")
            await expect(item.locator(".state")).to_have_text("处置中")
            stored = await api.runtime.store.alert(alert_id)
            assert stored is not None
            assert stored.state is AlertState.ACKNOWLEDGED
            assert [t.actor for t in await api.runtime.store.transitions(alert_id)][
                -1
            ] == "operator1"

            await item.locator("button.resolve").click()
            await page.fill("#resolve-note", "误报：宿舍内吸烟，已教育")
            await page.click("#resolve-submit")
            await expect(item).to_have_count(0)
            stored = await api.runtime.store.alert(alert_id)
            assert stored is not None
            assert stored.state is AlertState.RESOLVED

            await page.click("#lang")
            await expect(page.locator("h1")).to_have_text("Dormitory operations cockpit · 7号楼")
            await page.screenshot(path=str(ARTIFACTS / "cockpit-en.png"), full_page=True)
            await page.set_viewport_size({"width": 800, "height": 1000})
            await page.screenshot(path=str(ARTIFACTS / "cockpit-narrow.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
