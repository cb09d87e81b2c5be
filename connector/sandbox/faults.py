"""Fault injection both sandboxes share: :class:`Faults` (what to inject, reproducible from a
seed) and :class:`FaultInjector` (which request gets which fault). What a fault looks like on
the wire is each CRM's business (``hubspot/faults.py``, ``marketo/faults.py``); the semantics
(applied or not) are in :mod:`connector.sandbox.base`."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

FaultKind = Literal["error", "burst_429", "drop", "drop_after_apply", "slow", "proxy_page"]

# what a proxy or firewall in front of the API answers: HTTP 200, an HTML page, no request made
PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>Access check</title></head><body>"
    "<h1>Checking your connection</h1><p>This request was held by the network proxy.</p>"
    "</body></html>"
)


@dataclass(frozen=True)
class Faults:
    """What to inject; all off by default. Decisions are reproducible from ``seed``.

    Rates are probabilities per eligible request (0..1). A request is eligible when its method
    is in ``methods`` and its path starts with one of ``path_prefixes`` (empty = all).
    Every ``burst_429_every``-th eligible request starts a burst of ``burst_429_length``
    consecutive 429 answers (0 = never). ``proxy_page_rate``: a 200 carrying a proxy's HTML
    page (``PROXY_PAGE``) instead of the answer, the request never reaching the CRM.
    Precedence when several fire at once:
    burst_429 > error > proxy_page > drop > drop_after_apply > slow.
    """

    seed: int = 0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    drop_rate: float = 0.0
    drop_after_apply_rate: float = 0.0
    burst_429_every: int = 0
    burst_429_length: int = 1
    methods: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ()
    proxy_page_rate: float = 0.0

    def __post_init__(self) -> None:
        names = ("error_rate", "slow_rate", "drop_rate", "drop_after_apply_rate", "proxy_page_rate")
        for name in names:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be within 0..1, got {value!r}")
        if self.slow_seconds < 0:
            raise ValueError("Faults.slow_seconds must be >= 0")
        if self.burst_429_every < 0 or self.burst_429_length < 1:
            raise ValueError("Faults.burst_429_every must be >= 0 and burst_429_length >= 1")
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("Faults.error_statuses must be non-empty 5xx codes")

    @property
    def active(self) -> bool:
        return bool(
            self.error_rate
            or self.slow_rate
            or self.drop_rate
            or self.drop_after_apply_rate
            or self.burst_429_every
            or self.proxy_page_rate
        )

    def with_(self, **changes: Any) -> Faults:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    kind: FaultKind | None = None
    status: int = 0  # for ``error``: the 5xx status


class FaultInjector:
    """Decides, per request, which fault (if any) to inject. Thread-safe.

    The random draws depend only on the seed and on the order of *eligible* requests, so a
    sequential client sees the same faults on every run with the same seed.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._count = 0
        self._burst_left = 0

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the fault plan and restart its random sequence from the seed."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._count = 0
            self._burst_left = 0

    def _eligible(self, f: Faults, method: str, path: str) -> bool:
        if f.methods and method.upper() not in {m.upper() for m in f.methods}:
            return False
        return not f.path_prefixes or any(path.startswith(p) for p in f.path_prefixes)

    def decide(self, method: str, path: str) -> FaultDecision:
        with self._lock:
            f = self._faults
            if not f.active or not self._eligible(f, method, path):
                return FaultDecision()
            self._count += 1
            # Always draw the same number of values so one knob does not shift the others.
            r_error, r_drop, r_apply_drop, r_slow = (self._rng.random() for _ in range(4))
            status = self._rng.choice(f.error_statuses)
            # drawn only when asked for: plans without it keep their sequence
            r_proxy = self._rng.random() if f.proxy_page_rate else 1.0
            if f.burst_429_every and self._count % f.burst_429_every == 0:
                self._burst_left = f.burst_429_length
            if self._burst_left > 0:
                self._burst_left -= 1
                return FaultDecision("burst_429")
            if r_error < f.error_rate:
                return FaultDecision("error", status)
            if r_proxy < f.proxy_page_rate:
                return FaultDecision("proxy_page")
            if r_drop < f.drop_rate:
                return FaultDecision("drop")
            if r_apply_drop < f.drop_after_apply_rate:
                return FaultDecision("drop_after_apply")
            if r_slow < f.slow_rate:
                return FaultDecision("slow")
            return FaultDecision()
