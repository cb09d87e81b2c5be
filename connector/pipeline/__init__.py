"""One sync, as stages with the boundaries of its data flow (docs: design, "The data flow of
one sync"): pull → store (`pull`), enrich → score (`score`), plan (`plan`), write → commit
(`write`); `core.Pipeline` runs them in order and records the run. Everything that was
imported from `connector.pipeline` before it became a package is re-exported here."""

from connector.pipeline.core import Pipeline
from connector.pipeline.plan import (
    COMPANY_FIELDS,
    company_changes,
    company_fill,
    desired_properties,
    diff_properties,
    needs_write,
    planned_changes,
    same_value,
    write_changes,
)
from connector.pipeline.pull import MAX_FUTURE_SKEW
from connector.pipeline.score import Enricher, PostScoreStage
from connector.pipeline.stage import iso, parse_dt
from connector.pipeline.summary import PlannedWrite, SyncOptions, SyncSummary

# the time helpers under their names from before the split
_iso = iso
_dt = parse_dt

__all__ = [
    "COMPANY_FIELDS",
    "MAX_FUTURE_SKEW",
    "Enricher",
    "Pipeline",
    "PlannedWrite",
    "PostScoreStage",
    "SyncOptions",
    "SyncSummary",
    "company_changes",
    "company_fill",
    "desired_properties",
    "diff_properties",
    "needs_write",
    "planned_changes",
    "same_value",
    "write_changes",
]
