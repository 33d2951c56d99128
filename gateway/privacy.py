"""Keyed pseudonyms for card numbers: the gateway never stores a raw card number."""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_PREFIX = "p:"


class Pseudonymizer:
    """HMAC-SHA256 of a card number under the building's key, truncated to 128 bits.

    The same card always maps to the same pseudonym under one key, so presence and
    roster lookups work on pseudonyms alone; without the key the card cannot be recovered.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    def card(self, card_no: str) -> str:
        digest = hmac.new(self._key, card_no.strip().encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]
