"""The gate every REST and bulk call passes (identity calls are free): the access token
(600 missing, 601 unknown, 602 expired), the daily quota (607), the concurrency limit (615) and
the rolling rate window (606). The limiters are CRM-neutral (:mod:`connector.sandbox.base`)."""

from __future__ import annotations

from connector.sandbox.base import Request, Response
from connector.sandbox.marketo.api import MarketoApi


class AuthAndLimits(MarketoApi):
    """``_gate``: the envelope that stops a call before it is routed, or None."""

    def _gate(self, req: Request, inflight: int) -> Response | None:
        auth = (req.header("authorization") or "").strip()
        token: str | None = None
        if auth:
            scheme, _, value = auth.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if token is None:
            token = req.param("access_token")  # deprecated, still accepted
        if not token:
            return self.error("600")
        with self._token_lock:
            known = self._token is not None and token == self._token
            expired = known and self.instance.now_ms() >= self._token_expires_ms
        if self.reject_tokens or not known:
            return self.error("601")
        if expired:
            return self.error("602")
        if self.daily.remaining() <= 0:
            return self.error("607")
        if inflight > self.concurrency_limit:
            return self.error("615")
        accepted, _ = self.rate.try_acquire()
        if not accepted:
            window = self.rate.window_seconds / self.time_scale
            return self.error(
                "606", f"Max rate limit '{self.rate.limit}' exceeded with in '{window:g}' secs"
            )
        self.daily.try_acquire()
        return None
