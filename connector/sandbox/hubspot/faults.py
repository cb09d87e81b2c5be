"""How injected faults and sandbox bugs look on the wire: a seeded 429 is the ten-secondly
one, a 500 is HubSpot's JSON error, 502/503/504 are the HTML page HubSpot's edge answers. Which
request gets which fault is decided CRM-neutrally (:class:`connector.sandbox.base.Faults`)."""

from __future__ import annotations

from connector.sandbox.base import FaultDecision, Request, Response
from connector.sandbox.hubspot.errors import _error
from connector.sandbox.hubspot.limits import AuthAndLimits


class FaultAnswers(AuthAndLimits):
    """``fault_response`` and ``internal_error_response``, HubSpot-shaped."""

    def fault_response(self, req: Request, decision: FaultDecision) -> Response:
        if decision.kind == "burst_429":
            return self._rate_limited(
                "TEN_SECONDLY_ROLLING", self._rate_headers(0, self.daily.remaining())
            )
        status = decision.status or 500
        if status == 500:
            return _error(500, "internal error", "INTERNAL_ERROR")
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
            status, "Server Error"
        )
        page = (
            f"<html><head><title>{status} {reason}</title></head><body>"
            f"<center><h1>{status} {reason}</h1></center><hr><center>cloudflare</center>"
            "</body></html>"
        )
        return Response(status, page, content_type="text/html")

    def internal_error_response(self, req: Request, exc: BaseException) -> Response:
        return _error(500, f"internal error ({type(exc).__name__})", "INTERNAL_ERROR")
