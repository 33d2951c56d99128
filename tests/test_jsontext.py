"""gateway.jsontext: orjson where it can, the standard library for the rest, same results."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gateway import jsontext


def test_reads_what_the_standard_library_reads() -> None:
    doc = {"serialNo": 7, "name": "张三", "nested": {"a": [1, 2.5, None, True]}}
    text = json.dumps(doc, ensure_ascii=False)
    assert jsontext.loads(text) == doc
    assert jsontext.loads(text.encode()) == doc
    assert jsontext.loads(text.encode("utf-16")) == doc  # orjson refuses it; json takes it
    # past 64 bits an integer is read as a float (the decoder's int fields refuse it)
    big = jsontext.loads('{"big": 123456789012345678901234567890}')["big"]
    assert isinstance(big, float)
    assert big == pytest.approx(1.2345678901234568e29)


def test_not_json_raises_the_standard_message() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        jsontext.loads(b'{"a": ')
    with pytest.raises(ValueError, match=r"utf-8|decode|Expecting"):
        jsontext.loads(b"\xff\xfe\xfd")


@dataclass
class _Point:
    x: int


def test_writes_compact_text_as_the_standard_library_with_default_str() -> None:
    when = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    doc = {"z": "é", 1: [1, 2], "when": when, "p": _Point(3), "big": 2**70}
    std = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
    assert jsontext.dumps(doc) == std
    assert json.loads(jsontext.dumps({"a": 1.5, "b": "x"})) == {"a": 1.5, "b": "x"}


def test_nan_is_written_as_null() -> None:
    assert jsontext.dumps({"v": math.nan, "w": math.inf}) == '{"v":null,"w":null}'
