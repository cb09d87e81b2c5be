"""Faults as Marketo shows them: the generic seeded :class:`~connector.sandbox.base.Faults`
(a 429 becomes a 606 envelope, 502/503/504 an HTML page, 500 plain text), seeded error
envelopes (:class:`EnvelopeFaults`: 604/608/611/713 in a 200) and scripted answers
(:meth:`FaultAnswers.inject`: "the next n calls to this path answer 606")."""

from __future__ import annotations

import random
from dataclasses import dataclass

from connector.sandbox.base import FaultDecision, Request, Response
from connector.sandbox.marketo.api import MarketoApi


@dataclass(frozen=True)
class EnvelopeFaults:
    """Seeded error envelopes (HTTP 200, ``success: false``); the request is not applied.

    ``rate`` is the probability per eligible REST/bulk call (identity calls never are)."""

    seed: int = 0
    rate: float = 0.0
    codes: tuple[str, ...] = ("604", "608", "611", "713")
    path_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("EnvelopeFaults.rate must be within 0..1")
        if not self.codes:
            raise ValueError("EnvelopeFaults.codes must not be empty")


@dataclass
class _Scripted:
    answer: str  # an envelope code ("606"), an HTTP status ("502") or "drop"
    left: int
    path_prefix: str | None
    method: str | None


class FaultAnswers(MarketoApi):
    """Injected answers: scripted, seeded envelopes, and the generic faults' wire shapes."""

    def inject(
        self, answer: str, times: int = 1, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``times`` matching REST/bulk calls with ``answer``: an envelope error
        code ("606", "607", "604", "601", ...), an HTTP status ("502") or "drop". Injected
        answers are never applied. ``path`` is a path prefix."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._scripted_lock:
            self._scripted.append(
                _Scripted(answer, times, path, method.upper() if method else None)
            )

    def set_envelope_faults(self, faults: EnvelopeFaults) -> None:
        with self._env_lock:
            self._env_faults = faults
            self._env_rng = random.Random(faults.seed)

    @property
    def envelope_faults(self) -> EnvelopeFaults:
        with self._env_lock:
            return self._env_faults

    def _take_scripted(self, req: Request) -> Response | None:
        with self._scripted_lock:
            for item in self._scripted:
                if item.path_prefix is not None and not req.path.startswith(item.path_prefix):
                    continue
                if item.method is not None and item.method != req.method:
                    continue
                item.left -= 1
                if item.left <= 0:
                    self._scripted.remove(item)
                answer = item.answer
                break
            else:
                return None
        if answer == "drop":
            return Response(0, drop=True)
        if answer.isdigit() and int(answer) >= 500 and int(answer) < 600:
            return self.fault_response(req, FaultDecision("error", int(answer)))
        return self.error(answer)

    def _envelope_fault(self, req: Request) -> Response | None:
        with self._env_lock:
            f = self._env_faults
            if f.rate <= 0:
                return None
            if f.path_prefixes and not any(req.path.startswith(p) for p in f.path_prefixes):
                return None
            draw = self._env_rng.random()
            code = self._env_rng.choice(f.codes)
        return self.error(code) if draw < f.rate else None

    def _route_or_envelope_fault(self, req: Request) -> Response:
        """A seeded 604/608/611/713 in a 200 envelope, else the real answer."""
        env = self._envelope_fault(req)
        return env if env is not None else self.route(req)

    def fault_response(self, req: Request, decision: FaultDecision) -> Response:
        if decision.kind == "burst_429":
            return self.error("606")
        status = decision.status or 500
        if status in (502, 503, 504):
            reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
            page = (
                f"<html><head><title>{status} {reason[status]}</title></head><body><center>"
                f"<h1>{status} {reason[status]}</h1></center></body></html>"
            )
            return Response(status, page, content_type="text/html")
        return Response(status, "Internal Server Error", content_type="text/plain")

    def internal_error_response(self, req: Request, exc: BaseException) -> Response:
        return self.error("611", f"System error ({type(exc).__name__})")
