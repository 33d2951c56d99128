"""Inserting many rows with few statements.

SQLite does part of an INSERT's work once per statement execution, whatever the rows: above
all, a table with AUTOINCREMENT rewrites its `sqlite_sequence` row each time. `executemany`
executes the statement once per row; a multi-row `VALUES` list pays that work once per piece.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

PIECES = (256, 64, 16, 4, 1)
"""Rows per statement: a few fixed sizes, so only a few statements are ever prepared."""


@functools.lru_cache(maxsize=128)
def _statement(head: str, width: int, rows: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([one] * rows)}"


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run `head` (`INSERT INTO table (columns)`) for all `rows`, in order."""
    if not rows:
        return
    width = len(rows[0])
    i = 0
    for size in PIECES:
        statement = _statement(head, width, size)
        while len(rows) - i >= size:
            conn.execute(statement, [v for row in rows[i : i + size] for v in row])
            i += size
