"""Structured logging as configured by `log:`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.config.root import LogConfig
from gateway.logs import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_extras_and_exceptions(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(LogConfig(format="json", level="info"), stream=out)
    log = logging.getLogger("collectors.mqtt")
    log.info("gate offline %s", "g1", extra={"component": "mqtt", "device": "g1"})
    log.debug("not shown")
    try:
        raise ConnectionError("refused")
    except ConnectionError:
        log.exception("connect failed", extra={"component": "mqtt"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "gate offline g1"
    assert first["level"] == "info"
    assert first["logger"] == "collectors.mqtt"
    assert first["component"] == "mqtt"
    assert first["device"] == "g1"
    assert first["ts"].endswith("Z")
    assert first["ts"][10] == "T"
    assert second["level"] == "error"
    assert "ConnectionError: refused" in second["exc"]


def test_console_format_and_level(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(LogConfig(format="console", level="warning"), stream=out)
    log = logging.getLogger("gateway.supervisor")
    log.info("hidden")
    log.warning("component failed", extra={"component": "modbus", "attempt": 2})
    [line] = out.getvalue().splitlines()
    assert "WARNING" in line
    assert "gateway.supervisor: component failed" in line
    assert line.endswith("component=modbus attempt=2")


def test_reconfiguring_replaces_the_handler(restore_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(LogConfig(format="json"), stream=first)
    configure_logging(LogConfig(format="json"), stream=second)
    logging.getLogger("x").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_values_that_are_not_json_are_written_as_text(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(LogConfig(format="json"), stream=out)
    logging.getLogger("x").warning("odd", extra={"obj": object(), "raw": b"\x00"})
    rec = json.loads(out.getvalue())
    assert rec["obj"].startswith("<object object")
    assert rec["raw"] == "b'\\x00'"
