"""Authentication and rate limits, checked before a request is routed: the private-app token,
the ten-secondly and daily budgets with their ``X-HubSpot-RateLimit-*`` headers, and search's
own per-second budget (its answers carry no rate-limit headers). The limiters themselves are
CRM-neutral (:mod:`connector.sandbox.base`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from connector.sandbox.base import Request, Response, new_correlation_id
from connector.sandbox.hubspot.api import HubSpotApi
from connector.sandbox.hubspot.errors import _error

_SEARCH_PATH = re.compile(r"/crm/v3/objects/[^/]+/search/?")
_PUBLIC_SUBMIT = re.compile(r"/submissions/v3/integration/submit/")


class AuthAndLimits(HubSpotApi):
    """``preflight``: 401 for a missing or wrong token, 429 when a budget is spent."""

    def _rate_headers(self, remaining: int, daily_remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.ten_secondly.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.ten_secondly.interval_ms),
            "X-HubSpot-RateLimit-Daily": str(self.daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
        }

    def _rate_limited(self, policy: str, headers: Mapping[str, str] | None = None) -> Response:
        label = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "DAILY": "daily"}.get(
            policy, policy.lower()
        )
        body = {
            "status": "error",
            "message": f"You have reached your {label} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": new_correlation_id(),
            "policyName": policy,
        }
        return Response(429, body, headers=dict(headers or {}))

    def preflight(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        if _PUBLIC_SUBMIT.match(req.path):  # forms submission: no authentication (CORS)
            return None, {}
        auth = (req.header("authorization") or "").strip()
        if not auth:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), {}
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return _error(
                401,
                "Authentication credentials are invalid: the access token is unknown, "
                "expired or revoked.",
                "INVALID_AUTHENTICATION",
            ), {}
        if req.method == "POST" and _SEARCH_PATH.fullmatch(req.path):
            if self.daily.remaining() <= 0:
                return self._rate_limited("DAILY"), {}
            accepted, _ = self.search_limiter.try_acquire()
            if not accepted:
                return self._rate_limited("SECONDLY"), {}
            self.daily.try_acquire()
            return None, {}
        daily_left = self.daily.remaining()
        if daily_left <= 0:
            return self._rate_limited(
                "DAILY", self._rate_headers(self.ten_secondly.remaining(), 0)
            ), {}
        accepted, remaining = self.ten_secondly.try_acquire()
        if not accepted:
            return self._rate_limited("TEN_SECONDLY_ROLLING", self._rate_headers(0, daily_left)), {}
        _, daily_left = self.daily.try_acquire()
        return None, self._rate_headers(remaining, daily_left)
