"""CRM objects: ``/crm/v3/objects/{objectType}`` list, read, create, update, archive, the
``/batch/*`` endpoints and ``/merge``, for every declared :class:`ObjectType`.

An object type is a declaration in ``object_types`` (``CONTACTS``, ``COMPANIES``;
``OBJECT_TYPES`` lists what is routed): its path names, its label in messages, what a read
returns by default, what a search ``query`` looks in, which properties identify a record
(``idProperty``) and which property a write stamps (``lastmodifieddate`` for contacts,
``hs_lastmodifieddate`` for companies). The records themselves are kept by
:class:`~connector.sandbox.hubspot.portal.Portal`, one store per declared type (serving deals
means declaring them there and giving the portal a store for them).

Companies differ from contacts only where HubSpot does: no e-mail (so no 409 on create and no
``idProperty=email``), no events or roll-ups; a merge keeps the primary's values, fills the
empty ones, records ``hs_merged_object_ids`` and moves the associations to the survivor.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connector.sandbox.base import JsonDict, Request, Response, iso_ms
from connector.sandbox.hubspot.api import _NUMERIC_ID, HubSpotApi, _id_text
from connector.sandbox.hubspot.errors import (
    _BATCH_CATEGORIES,
    PropProblem,
    _bad,
    _error,
    _problems_message,
)
from connector.sandbox.hubspot.object_types import CONTACTS, ObjectType, object_type
from connector.sandbox.hubspot.portal import ContactRecord


class ObjectsAPI(HubSpotApi):
    """The object endpoints, over the declared object types."""

    def _history(self, rec: ContactRecord, name: str) -> list[JsonDict]:
        entries = rec.history.get(name)
        if entries:
            return [
                {"value": v, "timestamp": iso_ms(ms), "sourceType": src, "sourceId": "sandbox"}
                for v, ms, src in reversed(entries)
            ]
        value = rec.properties.get(name)
        if value is None:
            return []
        return [{"value": value, "timestamp": iso_ms(rec.created_ms), "sourceType": "IMPORT"}]

    def contact_json(
        self,
        rec: ContactRecord,
        props: Sequence[str] | None = None,
        history: Sequence[str] | None = None,
        ot: ObjectType = CONTACTS,
    ) -> JsonDict:
        names: Iterable[str] = ot.default_read if props is None else (*props, *ot.always_returned)
        out: dict[str, str | None] = {}
        known = self.portal.properties_of(ot)
        for name in names:
            value = rec.properties.get(name)
            if value is not None:
                out[name] = value
            elif name in known:
                out[name] = None
        obj: JsonDict = {
            "id": rec.id,
            "properties": dict(sorted(out.items())),
            "createdAt": iso_ms(rec.created_ms),
            "updatedAt": iso_ms(rec.updated_ms),
            "archived": rec.archived,
        }
        if rec.archived:
            obj["archivedAt"] = iso_ms(rec.archived_ms or rec.updated_ms)
        if history:
            obj["propertiesWithHistory"] = {n: self._history(rec, n) for n in history if n in known}
        return obj

    def _lookup(
        self, req: Request, key: str, include_archived: bool = False, ot: ObjectType = CONTACTS
    ) -> ContactRecord | None:
        id_property = req.param("idProperty")
        if id_property and id_property != "hs_object_id":
            if id_property not in ot.unique_properties:
                raise _bad(f"idProperty '{id_property}' is not a unique-value property")
            return self.portal.by_email(key)
        return self.portal.resolve(key, include_archived=include_archived, ot=ot)

    def _not_found(self, cid: str) -> Response:
        return _error(
            404,
            f"Object not found.  objectId are usually numeric. ({cid})",
            "OBJECT_NOT_FOUND",
            context={"id": [cid]},
        )

    def _validation_400(self, problems: Sequence[PropProblem]) -> Response:
        return _error(400, _problems_message(problems, self.portal.portal_id), "VALIDATION_ERROR")

    def _record_error(self, cid: str, problems: Sequence[PropProblem]) -> JsonDict:
        first = problems[0].code
        return {
            "status": "error",
            "category": first if first in _BATCH_CATEGORIES else "VALIDATION_ERROR",
            "message": _problems_message(problems, self.portal.portal_id),
            "context": {"ids": [cid], "propertyName": [p.name for p in problems]},
            "links": {},
            "errors": [
                {"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}}
                for p in problems
            ],
        }

    def _not_found_error(self, ids: Sequence[str], ot: ObjectType = CONTACTS) -> JsonDict:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {ot.label} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": list(ids)},
            "links": {},
            "errors": [],
        }

    def _batch_response(
        self, results: list[JsonDict], errors: list[JsonDict], started_ms: int, ok: int = 200
    ) -> Response:
        body: JsonDict = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started_ms),
            "completedAt": iso_ms(self.portal.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(ok, body)

    def _list(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        limit = self._int_param(req, "limit", 10, 1, 100)
        after = req.param("after")
        start = 0
        if after:
            if not _NUMERIC_ID.match(after):
                raise _bad(f"Invalid 'after' value: {after!r}")
            start = int(after)
        if self._bool_param(req, "archived"):
            pool = sorted(
                (
                    c
                    for c in self.portal.store(ot).records.values()
                    if c.archived and c.merged_into is None
                ),
                key=lambda c: c.num_id,
            )
            ids = [c.num_id for c in pool]
        else:
            pool, ids = self.portal.live_records(ot), self.portal.live_ids(ot)
        i = bisect.bisect_left(ids, start)
        page = pool[i : i + limit]
        props = self._list_param(req, "properties")
        history = self._list_param(req, "propertiesWithHistory")
        body: JsonDict = {"results": [self.contact_json(c, props, history, ot) for c in page]}
        if i + limit < len(pool):
            nxt = str(pool[i + limit].num_id)
            body["paging"] = self._next_page(req, nxt)
        return Response(200, body)

    def _get(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        rec = self._lookup(req, m["id"], self._bool_param(req, "archived"), ot)
        if rec is None:
            return self._not_found(m["id"])
        props = self._list_param(req, "properties")
        history = self._list_param(req, "propertiesWithHistory")
        return Response(200, self.contact_json(rec, props, history, ot))

    def _properties_body(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        props = body.get("properties")
        if not isinstance(props, dict):
            raise _bad("Invalid input JSON: 'properties' must be an object")
        return props

    def _update(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        props = self._properties_body(self._json_object(req))
        rec = self._lookup(req, m["id"], ot=ot)
        if rec is None:
            return self._not_found(m["id"])
        values, problems = self.portal.validate_writes(rec, props, ot=ot)
        if problems:
            return self._validation_400(problems)
        self.portal.apply(rec, values)
        return Response(200, self.contact_json(rec, list(values), ot=ot))

    def _create(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        props = self._properties_body(self._json_object(req))
        values, problems = self.portal.validate_writes(None, props, ot=ot)
        if problems:
            return self._validation_400(problems)
        email = values.get("email") if ot.unique_properties else None
        if email:
            existing = self.portal.by_email(email)
            if existing is not None:
                return _error(
                    409,
                    f"{ot.label.capitalize()} already exists. Existing ID: {existing.id}",
                    "CONFLICT",
                )
        rec = self.portal.create_object(ot, values)
        return Response(201, self.contact_json(rec, list(values), ot=ot))

    def _archive(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        rec = self._lookup(req, m["id"], ot=ot)
        if rec is not None:
            self.portal.archive(rec.id, ot=ot)
        return Response(204)

    def _batch_read(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        started = self.portal.now_ms()
        body = self._json_object(req)
        inputs = self._inputs(body)
        props = self._str_list(body, "properties")
        history = self._str_list(body, "propertiesWithHistory")
        id_property = body.get("idProperty")
        if id_property not in ot.id_properties:
            raise _bad(f"idProperty '{id_property}' is not a unique-value property")
        archived = self._bool_param(req, "archived")
        results: list[JsonDict] = []
        missing: list[str] = []
        seen: set[str] = set()
        for item in inputs:
            cid = _id_text(item.get("id"))
            rec = (
                self.portal.by_email(cid)
                if id_property == "email"
                else self.portal.resolve(cid, include_archived=archived, ot=ot)
            )
            if rec is None:
                missing.append(cid)
            elif rec.id not in seen:
                seen.add(rec.id)
                results.append(self.contact_json(rec, props, history, ot))
        errors = [self._not_found_error(missing, ot)] if missing else []
        return self._batch_response(results, errors, started)

    def _batch_update(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        started = self.portal.now_ms()
        inputs = self._inputs(self._json_object(req))
        ids: list[str] = []
        for item in inputs:
            ids.append(_id_text(item.get("id")))
            self._properties_body(item)
            if item.get("idProperty") not in ot.id_properties:
                raise _bad(f"idProperty '{item['idProperty']}' is not a unique-value property")
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise _bad(f"Duplicate IDs found in batch input: {dupes}")
        plan: list[tuple[str, ContactRecord, dict[str, str], list[PropProblem]]] = []
        missing: list[str] = []
        for cid, item in zip(ids, inputs, strict=True):
            rec = (
                self.portal.by_email(cid)
                if item.get("idProperty") == "email"
                else self.portal.resolve(cid, ot=ot)
            )
            if rec is None:
                missing.append(cid)
                continue
            values, problems = self.portal.validate_writes(rec, item["properties"], ot=ot)
            plan.append((cid, rec, values, problems))
        results: list[JsonDict] = []
        errors: list[JsonDict] = []
        for cid, rec, values, problems in plan:
            if problems:
                errors.append(self._record_error(cid, problems))
                continue
            self.portal.apply(rec, values)
            results.append(self.contact_json(rec, list(values), ot=ot))
        if missing:
            errors.append(self._not_found_error(missing, ot))
        return self._batch_response(results, errors, started)

    def _batch_create(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        started = self.portal.now_ms()
        inputs = self._inputs(self._json_object(req))
        prepared: list[dict[str, str]] = []
        emails: set[str] = set()
        for item in inputs:
            values, problems = self.portal.validate_writes(None, self._properties_body(item), ot=ot)
            if problems:
                return self._validation_400(problems)
            email = values.get("email", "").lower() if ot.unique_properties else ""
            if email:
                existing = self.portal.by_email(email)
                if existing is not None or email in emails:
                    where = existing.id if existing is not None else "in this batch"
                    message = f"{ot.label.capitalize()} already exists. Existing ID: {where}"
                    return _error(409, message, "CONFLICT")
                emails.add(email)
            prepared.append(values)
        results = [
            self.contact_json(self.portal.create_object(ot, v), list(v), ot=ot) for v in prepared
        ]
        return self._batch_response(results, [], started, ok=201)

    def _unique_property(self, ot: ObjectType, name: object) -> str:
        """An ``idProperty`` for an upsert: ``email`` for contacts or a unique-value property."""
        pdef = self.portal.properties_of(ot).get(name) if isinstance(name, str) else None
        if (
            not isinstance(name, str)
            or (
                name not in ot.unique_properties
                and (pdef is None or pdef.archived or not pdef.has_unique_value)
            )
            or name == "hs_object_id"
        ):
            raise _bad(f"idProperty '{name}' is not a unique-value property")
        return name

    def _find_unique(self, ot: ObjectType, name: str, value: str) -> ContactRecord | None:
        if ot is CONTACTS and name == "email":
            return self.portal.by_email(value)
        for rec in self.portal.live_records(ot):
            if rec.properties.get(name) == value:
                return rec
        return None

    def _batch_upsert(self, req: Request, m: dict[str, str]) -> Response:
        """``{inputs: [{id, idProperty, properties}]}``: update the record whose unique
        ``idProperty`` has the value ``id``, or create it with that value."""
        ot = object_type(m)
        started = self.portal.now_ms()
        inputs = self._inputs(self._json_object(req))
        plan: list[tuple[ContactRecord | None, dict[str, str]]] = []
        for item in inputs:
            name = self._unique_property(ot, item.get("idProperty") or req.param("idProperty"))
            value = _id_text(item.get("id"))
            rec = self._find_unique(ot, name, value)
            values, problems = self.portal.validate_writes(rec, self._properties_body(item), ot=ot)
            if problems:
                return self._validation_400(problems)
            if rec is None:
                values[name] = value
            plan.append((rec, values))
        results: list[JsonDict] = []
        for rec, values in plan:
            new = rec is None
            if rec is None:
                rec = self.portal.create_object(ot, values)
            else:
                self.portal.apply(rec, values)
            results.append({**self.contact_json(rec, list(values), ot=ot), "new": new})
        return self._batch_response(results, [], started)

    def _batch_archive(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        inputs = self._inputs(self._json_object(req))
        ids = [_id_text(item.get("id")) for item in inputs]
        for cid in ids:
            self.portal.archive(cid, ot=ot)
        return Response(204)

    def _merge(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        body = self._json_object(req)
        primary = _id_text(body.get("primaryObjectId"), "primaryObjectId")
        absorbed = _id_text(body.get("objectIdToMerge"), "objectIdToMerge")
        for cid in (primary, absorbed):
            if self.portal.resolve(cid, ot=ot) is None:
                return self._not_found(cid)
        try:
            survivor = self.portal.merge(primary, absorbed, ot=ot)
        except ValueError:
            raise _bad(
                f"Cannot merge {absorbed} into {primary}: they are already the same "
                f"{ot.singular or 'object'}"
            ) from None
        return Response(
            200, self.contact_json(survivor, [*ot.default_read, "hs_merged_object_ids"], ot=ot)
        )
