"""Fixtures shared by the whole suite live in tests/fixtures/, one module per real server."""

pytest_plugins = [
    "tests.fixtures.mosquitto",
    "tests.fixtures.modbus",
    "tests.fixtures.victoria",
    "tests.fixtures.store",
    "tests.fixtures.gateway_proc",
]
