"""The operator surface over the state DB: rescore preview/apply, what-if simulation, status,
dead letters, and the conversion report.

Every command's logic is a plain function over a `StateStore` (and, for the few that write, a
`Pipeline`) returning plain data; `analysis.py` and `report.py` hold the thin click layer.
Reads go through the store's public methods or, for aggregates, read-only SQL on `store.db`.
Nothing here writes to the state DB or the CRM except `rescore` (without `--dry-run`) and
`dead-letters --retry`, both through the pipeline's own write path.
"""
