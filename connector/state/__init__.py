"""The SQLite state DB (sqlite-utils, WAL mode, numbered migrations)."""

from connector.state.migrations import SCHEMA_VERSION
from connector.state.store import (
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_OK,
    RUN_PARTIAL,
    RUN_RUNNING,
    RUN_STOPPED,
    ActiveModel,
    CompanyCacheView,
    DeadLetter,
    RunRecord,
    StateStore,
    StoredScore,
)

__all__ = [
    "RUN_FAILED",
    "RUN_INTERRUPTED",
    "RUN_OK",
    "RUN_PARTIAL",
    "RUN_RUNNING",
    "RUN_STOPPED",
    "SCHEMA_VERSION",
    "ActiveModel",
    "CompanyCacheView",
    "DeadLetter",
    "RunRecord",
    "StateStore",
    "StoredScore",
]
