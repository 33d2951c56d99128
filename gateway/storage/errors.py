"""Errors the store raises to its callers."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation failed; the message says what and why. The store keeps running."""


class StoreFullError(StoreError):
    """The commit failed because the disk (or the database's page limit) is full."""


class StoreClosedError(StoreError):
    """The store is closed (or closing) and accepts no more work."""


class MigrationError(StoreError):
    """A schema migration is malformed or failed; the database is left at the previous version."""
