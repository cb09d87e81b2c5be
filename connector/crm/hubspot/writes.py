"""Contact and company write-back: batch update (<= 100) with a per-record outcome for 200
and 207, and the read-back (batch read) that confirms what the portal shows. Contacts and
companies take the same path (`_Object` says which): an attempt whose answer never came is
read back before anything is sent again."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from connector.crm.hubspot.calls import (
    HubSpotCalls,
    _error_outcomes,
    _HttpError,
    _RateLimited,
    _read_json,
    _results,
    log,
)
from connector.crm.hubspot.properties import COMPANY_PROPERTY_NAMES, PROPERTY_NAMES
from connector.errors import (
    InputError,
    RetryableError,
)
from connector.parse import parse_timestamp
from connector.retry import call_with_retry
from connector.types import WriteBack, WriteOutcome


@dataclass(frozen=True)
class _Object:
    """A CRM object we write: its API name (the call kinds), our property names → HubSpot's,
    the SDK package of its batch models, and whether a 404 answer to a whole batch means its
    records are archived (contacts) or only a single record's 404 does (companies: one id
    HubSpot does not know fails the batch)."""

    name: str
    names: Mapping[str, str]
    sdk: str
    batch_404_archived: bool


CONTACTS = _Object("contacts", PROPERTY_NAMES, "hubspot.crm.contacts", True)
COMPANIES = _Object("companies", COMPANY_PROPERTY_NAMES, "hubspot.crm.companies", False)


def _batch_body(
    writes: Sequence[WriteBack], obj: _Object = CONTACTS, name: Callable[[str], str] | None = None
) -> Any:
    namer = name or (lambda k: obj.names.get(k, k))
    models = importlib.import_module(obj.sdk)
    return models.BatchInputSimplePublicObjectBatchInput(
        inputs=[
            models.SimplePublicObjectBatchInput(
                id=w.contact_id,
                properties={namer(k): v for k, v in w.properties.items()},
            )
            for w in writes
        ]
    )


def _same_value(name: str, want: str, shown: Any) -> bool:
    """Does the CRM show the value we wrote? (HubSpot returns a cleared value as "" or null.)"""
    got = "" if shown is None else shown
    if not isinstance(got, str):
        return False
    if want == got:
        return True
    if name == PROPERTY_NAMES["scored_at"] and want and got:
        try:
            return parse_timestamp(want) == parse_timestamp(got)
        except InputError:
            return False
    return False


class WritesMixin(HubSpotCalls):
    """Batch updates, outcomes and read-back."""

    def _namer(self, obj: _Object) -> Callable[[str], str]:
        """Our key → the object's HubSpot property name (contacts: with the named scores')."""
        if obj is CONTACTS:
            return self.hs_name
        return lambda k: obj.names.get(k, k)

    # -- write-back -----------------------------------------------------------------------
    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch]))
        return outcomes

    def write_companies(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        """Batch-update companies (`WriteBack.contact_id` is the company id), 100 a call, a
        per-record outcome from 200 and 207 (404 / OBJECT_NOT_FOUND: archived); an attempt
        whose answer never came is read back before it is sent again, as contacts are."""
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch], COMPANIES))
        return outcomes

    def _batch_api(self, obj: _Object) -> Any:
        return self._company_batch if obj is COMPANIES else self._batch

    def _write_batch(
        self, batch: Sequence[WriteBack], obj: _Object = CONTACTS
    ) -> list[WriteOutcome]:
        """One batch update, retried by the one retry policy. An attempt that ends without a
        readable answer (timeout, dropped connection, 5xx, a body that is not JSON) may have
        been applied by HubSpot: before the next attempt the records are read back, and those
        already showing our values count as written. So no record is applied twice; only a
        429 is known not to have been applied and is simply sent again."""
        remaining = list(batch)
        confirmed: set[str] = set()
        unsure = False

        def attempt() -> tuple[dict[str, Any], int] | None:
            nonlocal remaining, unsure
            if unsure:
                got = self._confirm(remaining, obj)
                confirmed.update(got)
                remaining = [w for w in remaining if w.contact_id not in got]
                unsure = False
                if not remaining:
                    return None
            send = partial(
                self._batch_api(obj).update_with_http_info,
                _batch_body(remaining, obj, self._namer(obj)),
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            unsure = True
            try:
                data, status, _ = self._call_once(
                    f"{obj.name}.batch_update", partial(_read_json, send)
                )
            except _RateLimited:
                unsure = False  # rejected before it was applied
                raise
            # a 2xx JSON object is not enough ("status 200 means written" would count a
            # proxy's `{}` as every record written): HubSpot's answer always lists results
            if not isinstance(data.get("results"), list):
                raise RetryableError("HubSpot batch update answer has no results list")
            if not isinstance(data.get("errors", []), list):
                raise RetryableError("HubSpot batch update answer: errors is not a list")
            unsure = False
            return data, status

        failure: WriteOutcome | None = None
        try:
            answer = call_with_retry(
                attempt,
                self.retry_policy,
                sleep=self._sleep,
                on_retry=self._on_retry(f"{obj.name}.batch_update"),
            )
        except RetryableError as exc:
            answer = None
            failure = WriteOutcome("", False, True, str(exc))
        except _HttpError as exc:
            answer = None
            archived = exc.status == 404 and (obj.batch_404_archived or len(batch) == 1)
            failure = WriteOutcome("", False, False, exc.message or str(exc), archived=archived)
        failed: dict[str, WriteOutcome] = {}
        ok_ids: set[str] = set()
        status = 0
        if answer is not None:
            data, status = answer
            failed = _error_outcomes(data)
            ok_ids = {str(r.get("id")) for r in data.get("results") or [] if isinstance(r, Mapping)}
        out: list[WriteOutcome] = []
        for w in batch:
            if w.contact_id in confirmed:
                out.append(WriteOutcome(w.contact_id, True))
            elif failure is not None:
                out.append(replace(failure, contact_id=w.contact_id))
            elif w.contact_id in failed:
                out.append(failed[w.contact_id])
            elif w.contact_id in ok_ids or status == 200:
                out.append(WriteOutcome(w.contact_id, True))
            else:
                out.append(
                    WriteOutcome(w.contact_id, False, True, "not in HubSpot's batch response")
                )
        return out

    def confirm_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """The contact ids whose CRM values already equal the write, read back by batch read.

        After a write whose outcome is unknown (the process died, the answer never came), this
        tells a write HubSpot applied from one it never got, so nothing is sent twice.
        """
        return self._confirm(writes, CONTACTS)

    def confirm_companies_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """`confirm_written` for company writes (`WriteBack.contact_id` is the company id)."""
        return self._confirm(writes, COMPANIES)

    def _confirm(self, writes: Sequence[WriteBack], obj: _Object) -> set[str]:
        models = importlib.import_module(obj.sdk)
        confirmed: set[str] = set()
        for i in range(0, len(writes), 100):
            chunk = writes[i : i + 100]
            name = self._namer(obj)
            names = sorted({name(k) for w in chunk for k in w.properties})
            body = models.BatchReadInputSimplePublicObjectId(
                inputs=[models.SimplePublicObjectId(id=w.contact_id) for w in chunk],
                properties=names,
                properties_with_history=[],
            )
            try:
                data, _, _ = self._json_call(
                    f"{obj.name}.batch_read",
                    partial(
                        self._batch_api(obj).read_with_http_info,
                        body,
                        _request_timeout=self.timeout_s,
                        _preload_content=False,
                    ),
                )
            except _HttpError as exc:  # cannot be read back for good: count as not applied
                log.warning("hubspot cannot read back %d %s: %s", len(chunk), obj.name, exc)
                continue
            found: dict[str, Mapping[str, Any]] = {}
            for rec in _results(data, f"{obj.name}.batch_read"):
                if isinstance(rec, Mapping) and isinstance(rec.get("properties"), Mapping):
                    found[str(rec.get("id"))] = rec["properties"]
            for w in chunk:
                shown = found.get(w.contact_id)
                if shown is not None and all(
                    _same_value(name(k), v, shown.get(name(k))) for k, v in w.properties.items()
                ):
                    confirmed.add(w.contact_id)
        return confirmed
