"""A loopback HTTP server that behaves like the HubSpot API, for tests, demos and benchmarks.

Start it, point the official SDK at it, and read/poke the stored portal directly::

    from hubspot import HubSpot
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json", token="t") as sb:
        client = HubSpot(access_token="t", host=sb.url)      # works with hubspot-api-client 12
        client.crm.contacts.basic_api.get_by_id("101")
        sb.portal.contacts["101"].properties["lifecyclestage"]
        sb.add_event("101", "e_visited_page", {"hs_url": "https://x/pricing"})
        sb.requests[-1].status

Public API: ``HubSpotSandbox.start(portal=None, *, token="demo-token", port=0, now=None,
rate_limit=100, daily_limit=250_000, search_rate_limit=5, time_scale=1.0, faults=None,
keep_alive=False)`` -> a running sandbox (also a context manager) with ``url``, ``port``,
``portal`` (the stored :class:`Portal`: ``contacts[id].properties``, ``events``,
``email_events``, ``forms``, ``lock``, ``now_ms()``, ``advance()``), ``token`` (settable: rotate
to make the old one 401), ``faults`` (settable :class:`Faults`), ``requests`` (snapshot of the
:class:`RequestRecord` log), ``clear_log()``, ``internal_errors``, ``reset_limits()``,
``exhaust_daily_quota()``, ``stop()`` and the hooks ``add_event(contact_id, event_type,
properties, occurred_at)``, ``add_email_event(contact_id, type, occurred_at, campaign_id=, url=)``,
``submit_form(contact_id, form_name_or_id, occurred_at, page_url)``, ``set_property(contact_id,
name, value)`` (as a rep in the UI: any existing property, no stage rule), ``merge(primary,
absorbed)``, ``archive(contact_id)``, ``contact(id)``, ``company(id)`` and
``associate(contact_id, company_id, primary=False)``; ``portal.companies[id]`` holds the
companies. ``portal`` may be a :class:`Portal`, a
fixture dict or a fixture path (see :func:`load_portal`); ``now`` fixes the portal clock (the
fixture is shifted by ``now - anchor``; writes are then stamped just after ``now``).
``keep_alive=False`` answers ``Connection: close`` so SDK clients never leave open sockets.

Endpoints (paths with or without a trailing slash; ``contacts`` may also be spelled ``0-1``,
``companies`` ``0-2``):

* ``/crm/v3/objects/{contacts|companies}``: GET list (``limit`` <= 100, ``after``,
  ``properties``, ``propertiesWithHistory``, ``archived``), POST create (contacts: 409 on a
  duplicate e-mail), ``/{id}`` GET / PATCH / DELETE (``idProperty=email`` for contacts),
  ``/search``, ``/batch/read``, ``/batch/update``, ``/batch/create``, ``/batch/upsert``
  (``idProperty`` = ``email`` or a unique-value property), ``/batch/archive``, ``/merge``;
* ``/crm/v3/properties/{contacts|companies}`` (+ ``/{name}``, ``/groups``, ``/groups/{name}``),
  one catalogue per type (companies: ``name, domain, hs_additional_domains, numberofemployees,
  industry, annualrevenue, country, ... hs_lastmodifieddate, num_associated_contacts``; a
  company's ``industry`` is HubSpot's dropdown of industry codes, ``COMPUTER_SOFTWARE``...);
* associations v4 between contacts and companies (see ``associations``):
  ``GET /crm/v4/objects/{type}/{id}/associations/{toType}``, ``PUT .../default/{toType}/{toId}``,
  ``PUT|DELETE .../{toType}/{toId}``, ``POST /crm/v4/associations/{from}/{to}/batch/read``
  (<= 1,000 inputs), ``/batch/create``, ``/batch/associate/default``, ``/batch/archive``,
  ``/batch/labels/archive``, ``GET .../labels``;
* ``/events/v3/events/`` and ``/events/v3/events/event-types``;
* ``/email/public/v1/events``; ``/marketing/v3/forms/`` (+ ``/{id}``);
  ``/form-integrations/v1/submissions/forms/{guid}``;
* routes that create engagement (see ``engagement``): ``POST
  /submissions/v3/integration/submit/{portalId}/{formGuid}`` (no token) and
  ``.../integration/secure/submit/...`` (a form submission event, the contact created by e-mail
  if missing), ``POST /events/v3/send`` and ``/events/v3/send/batch`` (custom events, 204).

Behaviour worth knowing (each one is exercised in ``tests/test_sandbox_hubspot*.py``):

* Every write (create, PATCH, batch update, merge, ``set_property``, and a roll-up change caused
  by a new page view, form submission or marketing e-mail event) sets ``lastmodifieddate`` to
  the portal clock, strictly increasing per contact, even when the written values equal the
  stored ones. Companies stamp ``hs_lastmodifieddate`` instead (also the search cursor).
* Associations: a change of a contact's primary company sets its read-only
  ``associatedcompanyid`` and bumps its ``lastmodifieddate``; an unlabeled association alone
  does not bump the contact (HubSpot documents neither; integrators report association-only
  changes are missed by incremental syncs - re-read with ``batch/read``). A company's
  ``num_associated_contacts`` follows its live contacts and bumps ``hs_lastmodifieddate``.
  Associations follow a merge to the survivor; an archived record's are not returned.
* Custom events (``pe<portal>_*``) change no contact property, so they do not bump it:
  read them from the events API.
* A property deleted (archived) and created again under the same name is a new, empty property:
  no contact keeps a value of it, and none counts as modified.
* ``lifecyclestage`` only moves forward; a backward value is rejected (400 on a single PATCH,
  a per-record ``VALIDATION_ERROR`` in a batch) unless the stage is first cleared with ``""``.
  Entering a stage stamps ``hs_lifecyclestage_<stage>_date`` once.
* Read-only properties (``hs_object_id``, ``createdate``, ``lastmodifieddate``, the roll-ups,
  ``hs_merged_object_ids``, ...) reject writes with ``READ_ONLY_VALUE``.
* Batch update: 200 ``{status: "COMPLETE", results, startedAt, completedAt}`` when all inputs
  are good; otherwise **207** with ``numErrors`` and ``errors``. Good inputs in the same batch
  ARE applied. One error object per rejected record (``category`` = ``PROPERTY_DOESNT_EXIST``,
  ``INVALID_OPTION``, ``READ_ONLY_VALUE`` or ``VALIDATION_ERROR``; ``context`` =
  ``{"ids": [id], "propertyName": [...]}``), then one ``OBJECT_NOT_FOUND`` error whose
  ``context.ids`` lists every unknown/archived id. The ``message`` has the same JSON-escaped
  ``Property values were not valid: [...]`` text as a single PATCH's 400.
  Merged (absorbed) ids are resolved to the survivor (reads and writes).
* Search: ``total``, ``results``, ``paging.next.after`` (an offset). ``paging.next`` is present
  whenever more results exist - also when following it would cross the 10,000 cap, which
  answers 400. Limited to ``search_rate_limit`` requests per (scaled) second, answered with a
  429 whose ``policyName`` is ``"SECONDLY"``; search responses carry no rate-limit headers.
  Search has no index lag here (the real one lags writes by a few seconds).
* Events API: newest first unless ``sort=ASCENDING`` (also ``occurredAt`` / ``-occurredAt``);
  ``occurredAfter``/``occurredBefore`` are exclusive; ``limit`` defaults to 100 and is silently
  capped at 1000; the ``after`` cursor is keyset-based (stable while new events arrive).
  ``objectType`` in results is ``"CONTACT"``. Events of archived contacts are hidden.
* E-mail events v1: newest first, ``offset``/``hasMore`` paging, ``limit`` <= 1000;
  unsubscribes are reported with ``type: "UNSUBSCRIBED"``.
* Rate limits: ``X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds/-Daily/
  -Daily-Remaining`` on every authenticated non-search response; 429 bodies are
  ``{status, message, errorType: "RATE_LIMIT", correlationId, policyName}`` with
  ``TEN_SECONDLY_ROLLING`` or ``DAILY``; no ``Retry-After`` header (as on the real API).
  ``time_scale`` multiplies every window (10 s, 1 s for search, 1 day for the daily budget).
* Faults (see :class:`connector.sandbox.base.Faults`): 500 answers a JSON body, 502/503 answer an
  HTML page as HubSpot's edge does; ``drop``/``error``/``burst_429`` are never applied,
  ``slow``/``drop_after_apply`` are applied fully before the (late or missing) answer.

What hubspot-api-client 12.0.0 does with the answers (measured against this sandbox):

* 2xx including **207**: no exception. ``batch_api.update`` returns
  ``BatchResponseSimplePublicObject`` on 200 and ``BatchResponseSimplePublicObjectWithErrors`` on
  207 (``.num_errors``, ``.errors[i].category`` / ``.context["ids"]`` / ``.message``).
  Use ``batch_api.update_with_http_info(...)`` to get ``(model, status, headers)``.
* 401 -> ``hubspot.crm.contacts.exceptions.UnauthorizedException``; 404 ->
  ``NotFoundException``; 5xx -> ``ServiceException``; 400/409/429 -> plain ``ApiException``.
  Each API package has its own classes (``hubspot.crm.properties.ApiException``,
  ``hubspot.events.ApiException``, ...), all with ``.status`` (int), ``.body`` (the response
  body as ``str``: JSON text, or HTML for 502/503) and ``.headers`` (a case-insensitive
  ``HTTPHeaderDict``; the rate-limit headers are there). Nothing is retried on a status code
  (the 429 has no ``Retry-After``).
* A dropped connection surfaces as ``urllib3.exceptions.ProtocolError`` on POST/PATCH (urllib3
  does not retry them) and, after urllib3's default 3 silent retries, as ``MaxRetryError`` on
  GET. A slow answer past ``_request_timeout`` raises ``urllib3.exceptions.ReadTimeoutError``
  (GET: ``MaxRetryError`` after retries). None of these are ``ApiException``.

Where each part lives (one module per part of HubSpot's API docs; what both sandboxes share,
the server, request log, paging cursors, rate limiters, fault injection and fixture loading, is
in :mod:`connector.sandbox.base`, ``sandbox/limits.py`` and ``sandbox/faults.py``):

* ``portal``: the stored portal and every mutation (writes, the lifecycle-stage rules and
  ``hs_lifecyclestage_<stage>_date`` stamps, merges, archives, events, roll-ups);
  ``fixtures``: :func:`load_portal`;
* ``objects``: the object endpoints, batch and merge, routed for every object type declared in
  ``object_types`` (contacts and companies; the portal keeps one store per type);
  ``search``: CRM search; ``associations``: associations v4 (types in ``object_types``);
* ``properties``: the property catalogue, value checks and the properties/groups endpoints;
* ``events``: the events API and marketing e-mail events; ``forms``: forms and submissions;
  ``engagement``: forms submission v3 and custom events send;
* ``limits``: authentication and rate limits; ``faults``: how injected faults look;
* ``errors``: HubSpot's error envelope; ``api``: the request helpers the modules share;
  ``app``: the route table; ``sandbox``: :class:`HubSpotSandbox`, the public handle.

There are no webhook endpoints yet: they belong in a ``webhooks`` module next to ``objects``
(a class over ``api.HubSpotApi``, its routes in ``app``).
"""

from connector.sandbox.base import Faults
from connector.sandbox.hubspot.api import BATCH_MAX
from connector.sandbox.hubspot.app import DEFAULT_TOKEN, HubSpotApp
from connector.sandbox.hubspot.errors import BadRequest, LookupFailed, PropProblem
from connector.sandbox.hubspot.events import (
    EMAIL_EVENT_TYPES,
    FORM_SUBMISSION,
    PAGE_VIEW,
    EmailEvent,
    WebEvent,
)
from connector.sandbox.hubspot.fixtures import load_portal
from connector.sandbox.hubspot.forms import Form
from connector.sandbox.hubspot.object_types import (
    ALWAYS_RETURNED,
    ASSOCIATION_TYPES,
    COMPANIES,
    CONTACTS,
    DEFAULT_READ_PROPERTIES,
    OBJECT_TYPES,
    SEARCHABLE_BY_QUERY,
    AssociationType,
    ObjectType,
)
from connector.sandbox.hubspot.portal import DEFAULT_PORTAL_ID, ContactRecord, Portal
from connector.sandbox.hubspot.properties import (
    ANALYTICS_SOURCES,
    LEAD_STATUSES,
    LIFECYCLE_STAGES,
    PROPERTY_TYPES,
    ROLLUP_PROPERTIES,
    PropertyDef,
    PropertyGroup,
    default_groups,
    default_properties,
)
from connector.sandbox.hubspot.sandbox import HubSpotSandbox
from connector.sandbox.hubspot.search import (
    OPERATORS,
    SEARCH_MAX_FILTERS,
    SEARCH_MAX_FILTERS_PER_GROUP,
    SEARCH_MAX_GROUPS,
    SEARCH_MAX_LIMIT,
    SEARCH_MAX_RESULTS,
)

__all__ = [
    "ALWAYS_RETURNED",
    "ANALYTICS_SOURCES",
    "ASSOCIATION_TYPES",
    "BATCH_MAX",
    "COMPANIES",
    "CONTACTS",
    "DEFAULT_PORTAL_ID",
    "DEFAULT_READ_PROPERTIES",
    "DEFAULT_TOKEN",
    "EMAIL_EVENT_TYPES",
    "FORM_SUBMISSION",
    "LEAD_STATUSES",
    "LIFECYCLE_STAGES",
    "OBJECT_TYPES",
    "OPERATORS",
    "PAGE_VIEW",
    "PROPERTY_TYPES",
    "ROLLUP_PROPERTIES",
    "SEARCHABLE_BY_QUERY",
    "SEARCH_MAX_FILTERS",
    "SEARCH_MAX_FILTERS_PER_GROUP",
    "SEARCH_MAX_GROUPS",
    "SEARCH_MAX_LIMIT",
    "SEARCH_MAX_RESULTS",
    "AssociationType",
    "BadRequest",
    "ContactRecord",
    "EmailEvent",
    "Faults",
    "Form",
    "HubSpotApp",
    "HubSpotSandbox",
    "LookupFailed",
    "ObjectType",
    "Portal",
    "PropProblem",
    "PropertyDef",
    "PropertyGroup",
    "WebEvent",
    "default_groups",
    "default_properties",
    "load_portal",
]
