"""HubSpot's error answers: the ``{status, message, correlationId, category}`` envelope,
the per-property problems a write can have, and the exceptions the API modules raise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connector.sandbox.base import JsonDict, Response, new_correlation_id


@dataclass(frozen=True, slots=True)
class PropProblem:
    name: str
    code: str  # PROPERTY_DOESNT_EXIST, INVALID_OPTION, READ_ONLY_VALUE, ...
    message: str


class LookupFailed(Exception):
    """A merge/hook named a contact that does not exist (or is archived)."""


class BadRequest(Exception):
    """A request is malformed; ``response`` is the HubSpot-shaped answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _problems_message(problems: Sequence[PropProblem], portal_id: int) -> str:
    detail = [
        {
            "isValid": False,
            "message": p.message,
            "error": p.code,
            "name": p.name,
            "localizedErrorMessage": p.message,
            "portalId": portal_id,
        }
        for p in problems
    ]
    return "Property values were not valid: " + json.dumps(detail, separators=(",", ":"))


_BATCH_CATEGORIES = frozenset({"PROPERTY_DOESNT_EXIST", "INVALID_OPTION", "READ_ONLY_VALUE"})


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body: JsonDict = {
        "status": "error",
        "message": message,
        "correlationId": new_correlation_id(),
        "category": category,
    }
    body.update(extra)
    return Response(status, body)


def _bad(message: str, category: str = "VALIDATION_ERROR", status: int = 400) -> BadRequest:
    return BadRequest(_error(status, message, category))
