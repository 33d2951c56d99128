"""End to end with the real rule engine: a gate event raises an alert that reaches the live
stream, and the operator's acknowledgement goes through the engine's AlertService."""

from __future__ import annotations

import time
from pathlib import Path

from dashboard_api.auth import Role
from gateway.bus import Stream
from gateway.model import Event
from gateway.storage.batch import WriteBatch
from tests.test_api_harness import START_MS, SseReader, running_api


async def test_gate_event_to_stream_and_acknowledge(tmp_path: Path) -> None:
    async with running_api(tmp_path, rules=True) as api:
        assert type(api.runtime.alert_service).__module__ == "rules.service"
        headers = api.auth(Role.OPERATOR)
        async with api.client.stream("GET", "/api/v1/stream", headers=headers) as r:
            sse = SseReader(r)
            ev = Event(
                "gate-in-1:1", "gate-in-1", "gate.forced", START_MS, START_MS, {"direction": "in"}
            )
            t0 = time.monotonic()
            await api.runtime.store.commit(WriteBatch(events=[ev]))
            await api.runtime.bus.publish(Stream.EVENTS, ev)
            raised = await sse.until("alert", timeout=2)
            delay = time.monotonic() - t0
            assert raised.data["rule"] == "gate.forced"
            assert raised.data["severity"] == "critical"
            assert raised.data["state"] == "open"
            assert delay < 2
            alert_id = raised.data["id"]
            ack = await api.client.post(
                f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "去现场"}, headers=headers
            )
            assert ack.status_code == 200, ack.text
            assert ack.json()["state"] == "acknowledged"
            changed = await sse.until("alert", timeout=2)
            assert (changed.data["id"], changed.data["state"]) == (alert_id, "acknowledged")
        again = await api.client.post(
            f"/api/v1/alerts/{alert_id}/acknowledge", json={}, headers=headers
        )
        assert again.status_code == 409
        detail = (await api.client.get(f"/api/v1/alerts/{alert_id}", headers=headers)).json()
        assert [t["action"] for t in detail["transitions"]][-1] == "acknowledge"
        assert detail["transitions"][-1]["actor"] == "operator1"
