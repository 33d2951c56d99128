"""Numbered SQL migrations (`NNNN_name.sql`), applied in number order by `gateway.storage.migrate`.

Number ranges: 0001–0019 the store itself; other packages use the ranges they were given.
"""
