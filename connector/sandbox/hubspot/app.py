"""The HubSpot API application: the API modules combined, and the route table.

A route is (method, path pattern, handler); ``{object}`` in a pattern is any declared object
type (:data:`~connector.sandbox.hubspot.object_types.OBJECT_TYPES`), so every object type gets the
same object, search and properties endpoints.
"""

from __future__ import annotations

from connector.sandbox.base import (
    DailyQuota,
    Faults,
    Handler,
    Request,
    Response,
    RollingWindowLimiter,
    Routes,
    new_correlation_id,
)
from connector.sandbox.hubspot.api import _unquote
from connector.sandbox.hubspot.associations import AssociationsAPI
from connector.sandbox.hubspot.engagement import EngagementAPI
from connector.sandbox.hubspot.errors import BadRequest, _error
from connector.sandbox.hubspot.events import EventsAPI
from connector.sandbox.hubspot.faults import FaultAnswers
from connector.sandbox.hubspot.forms import FormsAPI
from connector.sandbox.hubspot.object_types import OBJECT_TYPE_GROUP
from connector.sandbox.hubspot.portal import Portal
from connector.sandbox.hubspot.properties import PropertiesAPI
from connector.sandbox.hubspot.search import SearchAPI

DEFAULT_TOKEN = "demo-token"  # noqa: S105 - a public demo value, not a secret

_OBJ = "/crm/v3/objects/" + OBJECT_TYPE_GROUP
_PROP = "/crm/v3/properties/" + OBJECT_TYPE_GROUP
_V4_OBJ = r"/crm/v4/objects/(?P<from>[^/]+)/(?P<id>[^/]+)/associations"
_V4_PAIR = r"/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)"
_SUBMIT = r"/submissions/v3/integration/submit/(?P<portal>[^/]+)/(?P<form>[^/]+)"
_SECURE_SUBMIT = r"/submissions/v3/integration/secure/submit/(?P<portal>[^/]+)/(?P<form>[^/]+)"


class HubSpotApp(
    SearchAPI,
    PropertiesAPI,
    AssociationsAPI,
    EngagementAPI,
    EventsAPI,
    FormsAPI,
    FaultAnswers,
):
    """HubSpot's API over a :class:`Portal`: auth, limits, routes, HubSpot-shaped errors."""

    def __init__(
        self,
        portal: Portal,
        *,
        token: str = DEFAULT_TOKEN,
        rate_limit: int = 100,
        daily_limit: int = 250_000,
        search_rate_limit: int = 5,
        time_scale: float = 1.0,
        faults: Faults | None = None,
    ) -> None:
        super().__init__(faults)
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.portal = portal
        self.token = token
        self.events_api_enabled = True  # False: the events API answers 403 MISSING_SCOPES
        self.time_scale = time_scale
        self.ten_secondly = RollingWindowLimiter(rate_limit, 10.0 * time_scale)
        self.search_limiter = RollingWindowLimiter(search_rate_limit, 1.0 * time_scale)
        self.daily = DailyQuota(daily_limit, 86_400.0 * time_scale)
        table: list[tuple[str, str, Handler]] = [
            ("GET", _OBJ, self._list),
            ("POST", _OBJ, self._create),
            ("POST", _OBJ + "/search", self._search),
            ("POST", _OBJ + "/batch/read", self._batch_read),
            ("POST", _OBJ + "/batch/update", self._batch_update),
            ("POST", _OBJ + "/batch/create", self._batch_create),
            ("POST", _OBJ + "/batch/upsert", self._batch_upsert),
            ("POST", _OBJ + "/batch/archive", self._batch_archive),
            ("POST", _OBJ + "/merge", self._merge),
            ("GET", _OBJ + r"/(?P<id>[^/]+)", self._get),
            ("PATCH", _OBJ + r"/(?P<id>[^/]+)", self._update),
            ("DELETE", _OBJ + r"/(?P<id>[^/]+)", self._archive),
            ("GET", _PROP, self._list_properties),
            ("POST", _PROP, self._create_property),
            ("GET", _PROP + "/groups", self._list_groups),
            ("POST", _PROP + "/groups", self._create_group),
            ("GET", _PROP + r"/groups/(?P<name>[^/]+)", self._get_group),
            ("PATCH", _PROP + r"/groups/(?P<name>[^/]+)", self._update_group),
            ("DELETE", _PROP + r"/groups/(?P<name>[^/]+)", self._archive_group),
            ("GET", _PROP + r"/(?P<name>[^/]+)", self._get_property),
            ("PATCH", _PROP + r"/(?P<name>[^/]+)", self._update_property),
            ("DELETE", _PROP + r"/(?P<name>[^/]+)", self._archive_property),
            ("GET", _V4_OBJ + r"/(?P<to>[^/]+)", self._assoc_list),
            ("PUT", _V4_OBJ + r"/default/(?P<to>[^/]+)/(?P<toId>[^/]+)", self._assoc_put_default),
            ("PUT", _V4_OBJ + r"/(?P<to>[^/]+)/(?P<toId>[^/]+)", self._assoc_put_labeled),
            ("DELETE", _V4_OBJ + r"/(?P<to>[^/]+)/(?P<toId>[^/]+)", self._assoc_delete),
            ("POST", _V4_PAIR + "/batch/read", self._assoc_batch_read),
            ("POST", _V4_PAIR + "/batch/create", self._assoc_batch_create),
            ("POST", _V4_PAIR + "/batch/associate/default", self._assoc_batch_default),
            ("POST", _V4_PAIR + "/batch/archive", self._assoc_batch_archive),
            ("POST", _V4_PAIR + "/batch/labels/archive", self._assoc_batch_labels_archive),
            ("GET", _V4_PAIR + "/labels", self._assoc_labels),
            ("POST", r"/events/v3/send", self._send_event),
            ("POST", r"/events/v3/send/batch", self._send_events),
            ("POST", _SUBMIT, self._submit_form),
            ("POST", _SECURE_SUBMIT, self._submit_form),
            ("GET", r"/events/v3/events", self._events),
            ("GET", r"/events/v3/events/event-types", self._event_types),
            ("GET", r"/email/public/v1/events", self._email_events),
            ("GET", r"/marketing/v3/forms", self._forms),
            ("GET", r"/marketing/v3/forms/(?P<id>[^/]+)", self._form),
            ("GET", r"/form-integrations/v1/submissions/forms/(?P<id>[^/]+)", self._submissions),
        ]
        self._routes = Routes(table)

    def finish(self, req: Request, resp: Response) -> None:
        cid = resp.body.get("correlationId") if isinstance(resp.body, dict) else None
        resp.headers.setdefault("X-HubSpot-Correlation-Id", str(cid or new_correlation_id()))

    def route(self, req: Request) -> Response:
        handler, groups, path_known = self._routes.find(req.method, req.path.rstrip("/") or "/")
        if handler is not None:
            groups = {k: _unquote(v) for k, v in groups.items()}
            try:
                with self.portal.lock:
                    return handler(req, groups)
            except BadRequest as exc:
                return exc.response
        if path_known:
            return _error(
                405, f"HTTP method {req.method} is not supported by {req.path}", "VALIDATION_ERROR"
            )
        return _error(404, f"Unable to route {req.method} {req.path}", "OBJECT_NOT_FOUND")
