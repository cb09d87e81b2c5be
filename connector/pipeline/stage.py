"""What every stage of a sync shares: the pipeline it works for (its store, adapter, options
and clock, read at each use, so a caller that swaps `pipeline.store` or `pipeline.clock` is
followed), the safe points, the log and the time format of cursors and written values."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connector.crm.base import CrmAdapter
from connector.state.store import StateStore

if TYPE_CHECKING:
    from connector.pipeline.core import Pipeline
    from connector.pipeline.summary import SyncOptions

# one logger for the whole sync, as before the split (log configs and tests name it)
log = logging.getLogger("connector.pipeline")


class Stage:
    """A part of one sync, bound to its pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @property
    def store(self) -> StateStore:
        return self.pipeline.store

    @property
    def adapter(self) -> CrmAdapter:
        return self.pipeline.adapter

    @property
    def crm(self) -> str:
        return self.pipeline.crm

    @property
    def options(self) -> SyncOptions:
        return self.pipeline.options

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.pipeline.clock

    def checkpoint(self, where: str) -> None:
        """A safe point ("page", "score", "write"): see `Pipeline.checkpoint`."""
        self.pipeline._checkpoint(where)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_dt(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def id_key(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)
