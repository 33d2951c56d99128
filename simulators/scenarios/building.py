"""The example building the scenarios (and the rules benchmark) run against."""

from __future__ import annotations

from gateway.config.rules import LaneConfig
from gateway.model import Catalog, DeviceInfo, DeviceKind

BUILDING = "b07"
TIMEZONE = "Asia/Shanghai"
LANES = (
    LaneConfig(gate="gate-1", camera="cam-1", line="lane"),
    LaneConfig(gate="gate-2", camera="cam-2", line="lane"),
)


def room_id(floor: int, n: int) -> str:
    return f"{floor}{n:02d}"


def standard_catalog(floors: int = 6, rooms_per_floor: int = 20) -> Catalog:
    """`floors` floors of `rooms_per_floor` rooms (room 312 = floor 3, room 12), a meter per
    room (`meter-312`), a safety module per floor (`safety-3`), four gates (1, 2 in; 3, 4 out),
    two terminals, two lane cameras (cam-1 on gate-1, cam-2 on gate-2) and two zone cameras."""
    cat = Catalog(BUILDING)
    for f in range(1, floors + 1):
        cat.add(DeviceInfo(f"safety-{f}", DeviceKind.SAFETY_IO, floor=f))
        for n in range(1, rooms_per_floor + 1):
            room = room_id(f, n)
            cat.add(DeviceInfo(f"meter-{room}", DeviceKind.METER, floor=f, room=room))
    for g in range(1, 5):
        cat.add(DeviceInfo(f"gate-{g}", DeviceKind.GATE, floor=1))
    for t in range(1, 3):
        cat.add(DeviceInfo(f"term-{t}", DeviceKind.TERMINAL, floor=1))
    cat.add(DeviceInfo("cam-1", DeviceKind.CAMERA, floor=1, zone="lane-1"))
    cat.add(DeviceInfo("cam-2", DeviceKind.CAMERA, floor=1, zone="lane-2"))
    cat.add(DeviceInfo("cam-3", DeviceKind.CAMERA, floor=1, zone="lobby"))
    cat.add(DeviceInfo("cam-4", DeviceKind.CAMERA, floor=2, zone="corridor-2"))
    return cat
