"""Identity: ``/identity/oauth/token`` (client credentials, GET or form POST) and the access
token's lifetime. The identity endpoint is the only one that answers OAuth-style 400/401; the
token is checked on every other call by ``limits``."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs

from connector.sandbox.base import Request, Response
from connector.sandbox.marketo.api import MarketoApi


class IdentityAPI(MarketoApi):
    """The token endpoint and the token hooks tests use."""

    def expire_tokens(self) -> None:
        """The current access token expires now (the next REST call answers 602)."""
        with self._token_lock:
            if self._token is not None:
                self._token_expires_ms = self.instance.now_ms()

    @property
    def current_token(self) -> str | None:
        with self._token_lock:
            return self._token

    def _identity(self, req: Request) -> Response:
        params = dict(req.query)
        ctype = (req.header("content-type") or "").lower()
        if req.method == "POST" and "application/x-www-form-urlencoded" in ctype:
            for k, v in parse_qs(req.raw_body.decode("utf-8", "replace")).items():
                params.setdefault(k, v)
        if req.method not in ("GET", "POST"):
            return Response(405, {"error": "method_not_allowed"})

        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        grant = one("grant_type")
        if grant is None:
            return Response(
                400, {"error": "invalid_request", "error_description": "Missing grant type"}
            )
        if grant != "client_credentials":
            return Response(
                400,
                {"error": "unsupported_grant_type", "error_description": f"Unsupported grant "
                 f"type: {grant}"},
            )  # fmt: skip
        if one("client_id") != self.client_id or one("client_secret") != self.client_secret:
            return Response(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        now = self.instance.now_ms()
        with self._token_lock:
            if self._token is None or now >= self._token_expires_ms:
                self._token = f"{uuid.uuid4()}:ab"
                self._token_expires_ms = now + int(self.token_ttl * 1000)
            left = max(0, (self._token_expires_ms - now) // 1000)
            token = self._token
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(left),
                "scope": "leadscore@leadscore.com",
            },
        )
