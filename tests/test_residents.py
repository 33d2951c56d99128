"""Residents: CSV import keeps card numbers only as keyed pseudonyms; reading a name is audited."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.privacy import Pseudonymizer
from gateway.storage.store import Store
from rules import persist
from rules.cli import _cmd_residents_import, _cmd_scenario_run
from rules.residents_io import (
    RosterImportError,
    import_rows,
    read_leave,
    read_roster,
    resident_info,
    resident_name,
)
from tests.test_rules_engine import local_ms

KEY = b"building-key-0123456789"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_import_stores_pseudonyms_only_and_leave_in_local_time(
    store: Store, store_clock: ManualClock, tmp_path: Path
) -> None:
    roster = read_roster(
        _write(
            tmp_path / "roster.csv",
            "cardNo,room,name,college\n3071234567,312,张三,物理\n3071234568,313,李四,\n",
        )
    )
    leave = read_leave(
        _write(
            tmp_path / "leave.csv", "cardNo,from,to\n3071234567,2026-11-26 08:00,2026-11-28 20:00\n"
        )
    )
    pseudo = Pseudonymizer(KEY)
    counts = await import_rows(
        store, pseudo, "Asia/Shanghai", roster, leave, now_ms=store_clock.now_ms()
    )
    assert counts == {"residents": 2, "leave": 1}

    def dump(conn: sqlite3.Connection) -> str:
        return "\n".join(
            "|".join(str(c) for c in row)
            for table in ("residents", "resident_leave")
            for row in conn.execute(f"SELECT * FROM {table}")
        )

    text = await store.read(dump)
    assert "3071234567" not in text
    assert "3071234568" not in text
    loaded = await store.read(persist.load_roster)
    p = pseudo.card("3071234567")
    assert loaded.rooms[p] == "312"
    assert loaded.on_leave(p, local_ms("2026-11-26 23:30:00"))
    assert not loaded.on_leave(p, local_ms("2026-11-28 23:30:00"))
    assert loaded.version == store_clock.now_ms()
    info = await resident_info(store, p)
    assert info is not None
    assert info["room"] == "312"


async def test_reading_a_name_requires_an_actor_and_is_audited(
    store: Store, store_clock: ManualClock, tmp_path: Path
) -> None:
    roster = read_roster(_write(tmp_path / "r.csv", "cardNo,room,name\n3071234567,312,张三\n"))
    pseudo = Pseudonymizer(KEY)
    await import_rows(store, pseudo, "Asia/Shanghai", roster, [], now_ms=store_clock.now_ms())
    p = pseudo.card("3071234567")
    with pytest.raises(ValueError, match="actor"):
        await resident_name(store, store_clock, p, actor="")
    assert (
        await resident_name(store, store_clock, p, actor="counselor-liu", purpose="未归") == "张三"
    )
    audit = [a for a in await store.audit_log() if a.action == "resident.name.read"]
    assert [(a.actor, a.target) for a in audit] == [("counselor-liu", p)]


def test_bad_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RosterImportError, match="missing column"):
        read_roster(_write(tmp_path / "a.csv", "card,room\n1,2\n"))
    with pytest.raises(RosterImportError, match=r"a\.csv:3: cardNo must be 6–20 digits"):
        read_roster(_write(tmp_path / "a.csv", "cardNo,room,name\n3071234567,1,x\n12ab,2,y\n"))


def test_residents_import_command(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "gw.yaml",
        "building: {id: b07}\n"
        "privacy: {card_key: 0123456789abcdef0123}\n"
        f"storage: {{path: {tmp_path / 'gw.sqlite'}}}\n",
    )
    roster = _write(tmp_path / "r.csv", "cardNo,room,name\n3071234567,312,张三\n")
    leave = _write(
        tmp_path / "l.csv", "cardNo,from,to\n3071234567,2026-11-26T08:00,2026-11-27T08:00\n"
    )
    args = argparse.Namespace(config=cfg, roster=roster, leave=leave)
    assert _cmd_residents_import(args) == 0
    con = sqlite3.connect(tmp_path / "gw.sqlite")
    try:
        [(pseudonym, room)] = con.execute("SELECT pseudonym, room FROM residents").fetchall()
        [(count,)] = con.execute("SELECT COUNT(*) FROM resident_leave").fetchall()
    finally:
        con.close()
    assert pseudonym == Pseudonymizer(b"0123456789abcdef0123").card("3071234567")
    assert room == "312"
    assert count == 1
    bad = _write(tmp_path / "bad.csv", "cardNo,room\n3071234567,312\n")
    assert _cmd_residents_import(argparse.Namespace(config=cfg, roster=bad, leave=None)) == 2


def test_scenario_run_command_exit_codes(tmp_path: Path) -> None:
    ok = _write(
        tmp_path / "ok.yaml",
        "rules: [gate.blacklist]\nsteps:\n"
        "  - {at: 1, gate: gate-1, event: denied_blacklist, card: '3071000666'}\n"
        "until: 5\nexpect:\n  - {rule: gate.blacklist, at: 1}\n",
    )
    wrong = _write(
        tmp_path / "wrong.yaml",
        "rules: [gate.blacklist]\nsteps:\n"
        "  - {at: 1, gate: gate-1, event: denied_blacklist, card: '3071000666'}\n"
        "until: 5\nforbid:\n  - {rule: gate.blacklist}\n",
    )
    assert _cmd_scenario_run(argparse.Namespace(files=[ok], quiet=True)) == 0
    assert _cmd_scenario_run(argparse.Namespace(files=[ok, wrong], quiet=True)) == 1
