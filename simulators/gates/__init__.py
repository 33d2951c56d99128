"""Simulated access gates and self-service terminals of one building (spec sections 1–2)."""
