"""The recording format: one JSON object per line, in arrival order.

`{"t": <ms received, UTC epoch>, "topic": ..., "qos": 1, "retain": false, "payload": "<text>"}`
with `"b64": true` and the payload base64-encoded when it is not valid UTF-8.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from simulators.gates.play import Timed


def encode(received_ms: int, topic: str, qos: int, retain: bool, payload: bytes) -> str:
    rec: dict[str, Any] = {"t": received_ms, "topic": topic, "qos": qos, "retain": retain}
    try:
        rec["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        rec["payload"] = base64.b64encode(payload).decode("ascii")
        rec["b64"] = True
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def decode(line: str) -> Timed:
    rec = json.loads(line)
    text: str = rec["payload"]
    payload = base64.b64decode(text) if rec.get("b64") else text.encode("utf-8")
    return Timed(int(rec["t"]), rec["topic"], payload, int(rec["qos"]), bool(rec["retain"]))


def read(path: Path) -> Iterator[Timed]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield decode(line)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a recording line ({exc})") from None


def write_line(fh: IO[str], line: str) -> None:
    fh.write(line + "\n")
