"""Three building gateways (real processes), each with its own building Mosquitto, and one
campus view on a campus Mosquitto: an alert raised in building b2 appears in the campus view;
acknowledging it there changes its state in b2 (recorded with the campus user as actor), and
the new state comes back to the view; both arrive on the view's live stream.

As documented in deploy/CAMPUS.md §5: the rule engine's notifier publishes alerts on the
building broker, which bridges `campus/{b}/alert/#` out to the campus broker; the northbound
sink (status, KPIs, commands) connects to the campus broker itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from collectors.mqtt.transport import MqttTransport
from dashboard_api.campus.app import STREAM_PATH, create_campus_app
from dashboard_api.campus.state import CampusState
from gateway.config.campus import CampusViewConfig
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.gateway_proc import GatewayFactory, GatewayProcess
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import free_port
from tests.test_api_harness import SseReader
from tests.test_campus_stream import StreamingAsgi

BUILDINGS = ("b1", "b2", "b3")
TOKEN = "campus-token-0123456789"
VIEWER_TOKEN = "viewer-token-0123456789"


async def until(pred: Callable[[], Any], timeout: float = 15.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := pred()):
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)
    return value


async def alert_event(sse: SseReader, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while not pred(data := (await sse.until("alert", timeout=15)).data):
            pass
        return data

    return await asyncio.wait_for(find(), 15)


def _bridge(b: str, campus_port: int) -> str:
    return "\n".join(
        [
            "connection campus",
            f"address 127.0.0.1:{campus_port}",
            f"remote_clientid {b}-bridge",
            "cleansession false",
            f"topic campus/{b}/alert/# out 1",
        ]
    )


def _building(b: str, port: int, campus_port: int) -> dict[str, Any]:
    return {
        "building": {"id": b},
        "mqtt": {
            "enabled": True,
            "broker": {"port": port, "client_id": f"{b}-gw"},
            "gates": [{"id": "gate-in-1", "floor": 1}],
        },
        "rules": {"enabled": True, "notify": {"poll_s": 0.2}},
        "storage": {"outbox": True},
        "upstream": {
            # nothing listens there: the time-series sink retries while this test runs
            "url": f"http://127.0.0.1:{free_port()}",
            "enabled": True,
            "northbound": {
                "enabled": True,
                "broker": {"port": campus_port, "client_id": f"{b}-north"},
                "poll_s": 0.2,
            },
        },
    }


def _state_in(gw: GatewayProcess, alert_id: str) -> tuple[str, list[tuple[str, str]]]:
    db = sqlite3.connect(f"file:{gw.workdir / 'store' / 'gateway.sqlite'}?mode=ro", uri=True)
    try:
        (state,) = db.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        rows = db.execute(
            "SELECT action, actor FROM alert_transitions WHERE alert_id = ? ORDER BY seq",
            (alert_id,),
        ).fetchall()
    finally:
        db.close()
    return str(state), [(str(a), str(b)) for a, b in rows]


async def test_alert_in_b2_seen_and_acknowledged_from_campus(
    mosquitto: Mosquitto, gateway_proc: GatewayFactory, tmp_path: Path
) -> None:
    campus = mosquitto
    brokers = {b: Mosquitto(tmp_path / b, extra_conf=_bridge(b, campus.port)) for b in BUILDINGS}
    for broker in brokers.values():
        broker.start()
    try:
        await _scenario(campus, brokers, gateway_proc)
    finally:
        for broker in brokers.values():
            broker.stop()


async def _scenario(
    campus: Mosquitto, brokers: dict[str, Mosquitto], gateway_proc: GatewayFactory
) -> None:
    gateways = {b: gateway_proc(_building(b, brokers[b].port, campus.port)) for b in BUILDINGS}
    state = CampusState()
    cfg = CampusViewConfig.model_validate(
        {
            "broker": {"port": campus.port, "client_id": "campus-view"},
            "buildings": list(BUILDINGS),
            "users": [
                {"name": "alice", "token": TOKEN},
                {"name": "desk", "token": VIEWER_TOKEN, "role": "viewer"},
            ],
        }
    )
    app = create_campus_app(cfg, state=state)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://campus"
        ) as client,
        httpx.AsyncClient(transport=StreamingAsgi(app), base_url="http://campus") as live,
        contextlib.AsyncExitStack() as stack,
    ):
        await until(lambda: all(state.building(b).online for b in BUILDINGS))
        assert (await client.get("/api/campus/v1/buildings")).status_code == 401
        sse = SseReader(
            await stack.enter_async_context(live.stream("GET", STREAM_PATH, headers=auth))
        )

        gate = MqttTransport(BrokerConfig(port=brokers["b2"].port, client_id="b2-gate-in-1"))
        async with gate:
            await gate.wait_connected()
            event = {
                "serialNo": 1,
                "time": datetime.now(UTC).isoformat(),
                "event": "forced",
                "direction": "in",
            }
            await gate.publish("campus/b2/gate/gate-in-1/event", json.dumps(event).encode())

        def forced() -> list[dict[str, Any]]:
            return [a for a in state.alerts() if a["rule"] == "gate.forced"]

        (raised,) = await until(forced)
        assert raised["building"] == "b2"
        assert raised["state"] == "open"
        streamed = await alert_event(sse, lambda a: a["rule"] == "gate.forced")
        assert (streamed["building"], streamed["id"], streamed["state"]) == (
            "b2",
            raised["id"],
            "open",
        )
        listed = (await client.get("/api/campus/v1/alerts", headers=auth)).json()["alerts"]
        assert [(a["building"], a["id"]) for a in listed if a["rule"] == "gate.forced"] == [
            ("b2", raised["id"])
        ]
        picker = (await client.get("/api/campus/v1/buildings", headers=auth)).json()
        assert [b["id"] for b in picker["buildings"]] == list(BUILDINGS)
        assert picker["campus"]["open_alerts"] >= 1
        assert picker["campus"]["buildings_online"] == 3

        url = f"/api/campus/v1/alerts/b2/{raised['id']}/acknowledge"
        denied = await client.post(
            url, json={}, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
        )
        assert denied.status_code == 403
        relayed = await client.post(url, json={"note": "security on the way"}, headers=auth)
        assert relayed.status_code == 202, relayed.text

        def acknowledged() -> bool:
            a = state.building("b2").alerts.get(raised["id"])
            return a is not None and a["state"] == "acknowledged"

        await until(acknowledged)
        streamed = await alert_event(sse, lambda a: a["state"] == "acknowledged")
        assert (streamed["building"], streamed["id"]) == ("b2", raised["id"])
        await until(lambda: state.building("b2").results)
        assert state.building("b2").results[-1]["ok"] is True
        assert state.building("b2").results[-1]["request_id"] == relayed.json()["request_id"]

    # A campus view started afresh knows b2's unresolved alert at once (retained snapshot).
    fresh = CampusState()
    cfg2 = cfg.model_copy(update={"broker": cfg.broker.model_copy(update={"client_id": "cv2"})})
    app2 = create_campus_app(cfg2, state=fresh)
    async with app2.router.lifespan_context(app2):
        again = await until(lambda: fresh.building("b2").alerts.get(raised["id"]))
        assert again["state"] == "acknowledged"

    in_b2, transitions = _state_in(gateways["b2"], raised["id"])
    assert in_b2 == "acknowledged"
    assert transitions[-1] == ("acknowledge", "campus:alice")
    for b in ("b1", "b3"):  # the others never saw it
        db = gateways[b].workdir / "store" / "gateway.sqlite"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            n = conn.execute("SELECT count(*) FROM alerts WHERE rule = 'gate.forced'").fetchone()
        finally:
            conn.close()
        assert n == (0,)
    for gw in gateways.values():
        assert gw.stop() == 0
