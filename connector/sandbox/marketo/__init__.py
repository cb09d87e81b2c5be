"""A loopback HTTP server that behaves like Marketo Engage's REST and bulk APIs.

For tests, demos and benchmarks. Start it, authenticate with the client credentials it prints,
and read/poke the stored instance directly::

    with MarketoSandbox.start("fixtures/marketo_demo_instance.json") as sb:
        adapter = MarketoAdapter(sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret))
        sb.instance.leads[101].values["leadStatus"]
        sb.add_activity(101, 1, "pricing", {"Webpage URL": "/pricing"})
        sb.requests[-1].error_codes

Endpoints (``reference/marketo-api.md`` is the spec this follows):

* ``/identity/oauth/token`` (GET with query parameters, or POST form-encoded): client
  credentials -> ``{access_token, token_type, expires_in, scope}``; asking again before expiry
  returns the **same** token with its remaining lifetime (``token_ttl`` seconds, 3600 by default).
* ``/rest/v1/leads.json``: GET by ``filterType``/``filterValues`` (<= 300), ``fields``,
  ``batchSize`` (<= 300), ``nextPageToken``; more than 1,000 matches -> 1003. POST
  ``{action, lookupField: id|email, input (<= 300)}`` with per-record created/updated/skipped
  and reasons (1004 not found, 1005 exists, 1006 field not found, 1007 multiple match, 1003
  invalid value). ``/rest/v1/lead/{id}.json``; ``/rest/v1/leads/delete.json``;
  ``POST /rest/v1/leads/{id}/merge.json?leadId=|leadIds=&mergeInCRM=`` (the path's lead wins;
  ``{requestId, success}`` with no ``result``; see ``Instance.merge_leads``).
* ``/rest/v1/leads/describe.json`` and ``describe2.json`` (instance-specific field names).
* ``/rest/v1/activities/types.json``, ``pagingtoken.json?sinceDatetime=``,
  ``/rest/v1/activities.json`` (<= 10 ``activityTypeIds``, <= 30 ``leadIds``),
  ``leadchanges.json`` (``fields`` required), ``deletedleads.json``.
* ``/bulk/v1/{leads|activities}/export/create.json`` (fields, ``createdAt``/``updatedAt``
  window <= 31 days), ``/{exportId}/enqueue.json``, ``status.json``, ``cancel.json``,
  ``file.json`` (CSV, ``null`` as text, ``Range`` -> 206); ``/bulk/v1/.../export.json`` lists.

Behaviour worth knowing (each one is exercised in ``tests/test_marketo_sandbox.py``):

* Every answer to a REST or bulk call is the envelope ``{requestId, success, result, errors,
  warnings}`` (plus ``nextPageToken``/``moreResult`` where they apply) with HTTP **200**, also
  for errors: ``errors`` is ``[{code, message}]`` and ``code`` is a **string**. Only the
  identity endpoint answers OAuth-style 401/400, and injected 5xx are HTML or plain text.
* Access token: missing -> 600, unknown -> 601, expired -> 602 (all in a 200 body).
  ``expire_tokens()`` expires the current one at once; ``reject_tokens = True`` answers 601 to
  every call (a token loop trap).
* Limits (identity calls are free): 100 calls per rolling 20 s -> 606, more than 10 calls in
  flight -> 615, ``daily_limit`` calls per day -> 607. ``time_scale`` multiplies the windows;
  ``hold_seconds`` keeps each call in flight that long (to provoke 615).
* Form-encoded POSTs carrying ``_method=GET`` are answered as the GET with the form fields as
  parameters (what ``marketorestpython`` sends for long queries); the log keeps ``POST`` with
  ``effective_method == "GET"``. So are JSON POSTs with ``?_method=GET`` (the query form for
  keys a comma-separated ``filterValues`` cannot carry): the body's members are the
  parameters, its ``input`` records the values (``companies.json`` reads them).
* Activity paging scans the time-ordered activity log: a page returns the matches among at
  most ``scan_limit`` scanned activities, so pages are **short or empty while moreResult is
  true** whenever filters are selective; ``empty_page_every = n`` additionally answers every
  n-th activity page empty (new token, nothing consumed). ``stuck_paging = True`` answers an
  empty page with the very token it was given and ``moreResult: true`` (a broken-server trap).
  A page with nothing to return has no ``result`` key at all, as on the real API.
* Writes bump ``updatedAt`` and log a Change Data Value (13) activity per changed field
  (Change Score, 22, for ``leadScore``); creates log New Lead (12); deletes log Delete Lead (37),
  which ``deletedleads.json`` reports. A merge moves the losers' activities to the winner,
  deletes the losers (as a delete does), fills the winner's empty fields from them and logs
  Merge Leads (32) on the winner with ``Merge IDs`` ("[43,44]"), ``Merge Source``, ``Merged in
  Sales`` and ``Master Updated``.
* Bulk export: at most 2 jobs processing and 10 queued (1029); a job takes ``export_seconds``
  to process; ``fail_next_export = True`` makes the next one end ``Failed``.
* Faults: the generic :class:`~connector.sandbox.base.Faults` (5xx, dropped connections,
  slow answers; ``burst_429`` becomes a 606 envelope), :class:`EnvelopeFaults` (seeded 604/608/
  611/713 envelopes, never applied), and :meth:`MarketoApp.inject` (scripted: "the next n calls
  to this path answer 606").

Where each part lives (one module per part of Marketo's API docs; what both sandboxes share,
the server, request log, paging cursors, rate limiters, fault injection and fixture loading, is
in :mod:`connector.sandbox.base`, ``sandbox/limits.py`` and ``sandbox/faults.py``):

* ``instance``: the stored instance and every mutation; ``fixtures``: :func:`load_instance`;
* ``identity``: the token endpoint; ``limits``: the gate (token, quotas, rate, concurrency);
* ``leads``: fields and the lead endpoints; ``activities``: activity types and the activity
  endpoints; ``bulk``: bulk export;
* ``faults``: injected answers (:class:`EnvelopeFaults`, ``inject``, the generic faults' shapes);
* ``api``: the envelope, error codes and request helpers; ``app``: the route table and the
  request pipeline; ``sandbox``: :class:`MarketoSandbox`, the public handle.
"""

from connector.sandbox.base import Faults, iso_s
from connector.sandbox.marketo.activities import (
    CHANGE_DATA_VALUE,
    CHANGE_SCORE,
    DELETE_LEAD,
    MAX_LEAD_IDS,
    MAX_TYPE_IDS,
    MERGE_LEADS,
    NEW_LEAD,
    WEBINAR_ATTENDED,
    WEBINAR_REGISTERED,
    ActivityRecord,
    ActivityType,
    standard_activity_types,
    webinar_activity_types,
)
from connector.sandbox.marketo.api import ERROR_MESSAGES, MAX_BATCH
from connector.sandbox.marketo.app import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MarketoApp,
    MarketoRequestRecord,
)
from connector.sandbox.marketo.bulk import MAX_EXPORT_DAYS, MAX_PROCESSING, MAX_QUEUED, ExportJob
from connector.sandbox.marketo.faults import EnvelopeFaults
from connector.sandbox.marketo.fixtures import load_instance
from connector.sandbox.marketo.instance import DEFAULT_MUNCHKIN, Instance
from connector.sandbox.marketo.leads import (
    MAX_FILTER_VALUES,
    MAX_MATCHES,
    MAX_MERGE_LOSERS,
    STANDARD_FIELDS,
    FieldDef,
    LeadRecord,
    ValueProblem,
    coerce,
    render,
    standard_fields,
)
from connector.sandbox.marketo.sandbox import MarketoSandbox

__all__ = [
    "CHANGE_DATA_VALUE",
    "CHANGE_SCORE",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_MUNCHKIN",
    "DELETE_LEAD",
    "ERROR_MESSAGES",
    "MAX_BATCH",
    "MAX_EXPORT_DAYS",
    "MAX_FILTER_VALUES",
    "MAX_LEAD_IDS",
    "MAX_MATCHES",
    "MAX_MERGE_LOSERS",
    "MAX_PROCESSING",
    "MAX_QUEUED",
    "MAX_TYPE_IDS",
    "MERGE_LEADS",
    "NEW_LEAD",
    "STANDARD_FIELDS",
    "WEBINAR_ATTENDED",
    "WEBINAR_REGISTERED",
    "ActivityRecord",
    "ActivityType",
    "EnvelopeFaults",
    "ExportJob",
    "Faults",
    "FieldDef",
    "Instance",
    "LeadRecord",
    "MarketoApp",
    "MarketoRequestRecord",
    "MarketoSandbox",
    "ValueProblem",
    "coerce",
    "iso_s",
    "load_instance",
    "render",
    "standard_activity_types",
    "standard_fields",
    "webinar_activity_types",
]
