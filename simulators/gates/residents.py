"""The simulated building's residents, their daily movement and the roster CSV."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SURNAMES = (
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Luo",
    "Gao",
)
_GIVEN = (
    "Wei",
    "Fang",
    "Na",
    "Min",
    "Jing",
    "Li",
    "Qiang",
    "Lei",
    "Jun",
    "Yang",
    "Yong",
    "Yan",
    "Jie",
    "Juan",
    "Tao",
    "Ming",
    "Chao",
    "Xiu",
    "Xia",
    "Hui",
)


@dataclass(frozen=True, slots=True)
class Resident:
    card_no: str
    room: str
    name: str
    night_owl: float
    """Chance of coming back after curfew on an evening out."""
    homebody: float
    """Chance of staying in all day."""


def make_residents(
    seed: int, floors: int = 6, rooms_per_floor: int = 20, per_room: int = 4
) -> list[Resident]:
    rng = random.Random(f"{seed}:residents")
    out: list[Resident] = []
    cards: set[str] = set()
    for floor in range(1, floors + 1):
        for r in range(1, rooms_per_floor + 1):
            room = f"{floor}{r:02d}"
            for _ in range(per_room):
                card = f"30{rng.randrange(10**8):08d}"
                while card in cards:
                    card = f"30{rng.randrange(10**8):08d}"
                cards.add(card)
                out.append(
                    Resident(
                        card_no=card,
                        room=room,
                        name=f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}",
                        night_owl=rng.choice((0.02, 0.05, 0.05, 0.1, 0.3)),
                        homebody=rng.choice((0.0, 0.02, 0.03, 0.05, 0.2)),
                    )
                )
    return out


def write_roster(path: Path, residents: Iterable[Resident]) -> int:
    """Write the student-affairs export (`cardNo,room,name`); returns rows written."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["cardNo", "room", "name"])
        for r in residents:
            w.writerow([r.card_no, r.room, r.name])
            n += 1
    return n


def day_passages(
    rng: random.Random, r: Resident, weekend: bool, away_last_night: bool
) -> tuple[list[tuple[float, str]], bool]:
    """One resident's passages on one day as (hour of day, direction) in order, and whether
    they spend the coming night away. Hours past 24 fall after midnight."""
    away_tonight = rng.random() < (0.10 if weekend else 0.02)
    seq: list[tuple[float, str]] = []
    if away_last_night:
        back = rng.uniform(9, 20)
        seq.append((back, "in"))
    elif rng.random() < r.homebody:
        return seq, False
    else:
        if weekend:
            seq.append((rng.uniform(9, 12), "out"))
            back = rng.uniform(15, 22.5)
        else:
            seq.append((rng.gauss(7.75, 0.4), "out"))
            if rng.random() < 0.35:  # lunch at the dorm
                seq.append((rng.gauss(12.0, 0.15), "in"))
                seq.append((rng.gauss(13.6, 0.2), "out"))
            back = rng.gauss(17.5, 0.8)
        if away_tonight:
            return _monotonic(seq), True
        seq.append((back, "in"))
    if rng.random() < 0.4 and back < 21:  # an evening out: dinner, library, sports
        go = back + rng.uniform(0.5, 2.0)
        ret = go + rng.uniform(1.0, 3.5)
        if rng.random() < r.night_owl:
            ret = rng.uniform(23.1, 25.5)  # a late return
        seq.append((go, "out"))
        seq.append((max(ret, go + 0.2), "in"))
    return _monotonic(seq), False


def _monotonic(seq: list[tuple[float, str]]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    last = 0.0
    for hour, d in seq:
        last = max(hour, last + 0.05)
        out.append((last, d))
    return out
