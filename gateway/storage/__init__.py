"""The embedded SQLite time-series store: `Store` (store.py) and `WriteBatch` (batch.py)."""
