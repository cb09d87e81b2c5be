"""Associations v4: ``/crm/v4/objects/{type}/{id}/associations/...`` and
``/crm/v4/associations/{from}/{to}/batch/*`` and ``.../labels``, between contacts and companies.

Object types are accepted by name (``contacts``, ``companies``), singular (``contact``,
``company``) and id (``0-1``, ``0-2``). The HUBSPOT_DEFINED types are declared in
``object_types.ASSOCIATION_TYPES``: contact->company 279 (unlabeled) and 1 (Primary),
company->contact 280 and 2. Every association carries the unlabeled type; a labeled one is
listed next to it. A contact has at most one primary company: setting a new one moves it.

What an association change does to the records (decided here; HubSpot documents none of it):
the primary company is mirrored into the contact's read-only ``associatedcompanyid`` and a
change of it bumps the contact's ``lastmodifieddate``; an unlabeled association alone does not
bump the contact. A company's ``num_associated_contacts`` counts its live contacts and a change
bumps its ``hs_lastmodifieddate``. Associations follow a merge to the survivor; an archived
record's associations are not returned (they come back if it is restored).

Paging: ``GET .../associations/{toType}`` pages by 500 (``limit`` <= 500) with an ``after``
cursor (the last returned id); ``batch/read`` takes at most 1,000 inputs and pages each result on
its own (``paging.next.after`` on a result only when that record has more than 500; re-send
``{id, after}``). Unknown or archived ``from`` ids are a 207 ``OBJECT_NOT_FOUND`` error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.base import JsonDict, Request, Response, iso_ms
from connector.sandbox.hubspot.api import _NUMERIC_ID, HubSpotApi, _id_text, _is_int
from connector.sandbox.hubspot.errors import BadRequest, _bad, _error
from connector.sandbox.hubspot.object_types import (
    AssociationType,
    ObjectType,
    association_object_type,
    association_types,
    unlabeled_type,
)
from connector.sandbox.hubspot.portal import ContactRecord

ASSOCIATIONS_PAGE_MAX = 500
ASSOCIATIONS_BATCH_READ_MAX = 1000
ASSOCIATIONS_BATCH_MAX = 100


def _type_json(a: AssociationType) -> JsonDict:
    return {"category": a.category, "typeId": a.type_id, "label": a.label}


class AssociationsAPI(HubSpotApi):
    """The associations v4 endpoints over the portal's association store."""

    def _assoc_types(self, m: Mapping[str, str]) -> tuple[ObjectType, ObjectType]:
        out = []
        for key in ("from", "to"):
            ot = association_object_type(m[key])
            if ot is None:
                raise BadRequest(
                    _error(400, f"Unable to infer object type from: {m[key]}", "VALIDATION_ERROR")
                )
            out.append(ot)
        a, b = out
        if unlabeled_type(a.name, b.name) is None:
            raise _bad(f"No association types exist between {a.name} and {b.name}")
        return a, b

    def _record(self, ot: ObjectType, oid: str) -> ContactRecord | None:
        return self.portal.resolve(oid, ot=ot)

    def _missing(self, ot: ObjectType, oid: str) -> Response:
        return _error(
            404,
            f"No {ot.singular} with ID {oid} exists",
            "OBJECT_NOT_FOUND",
            context={"id": [oid]},
        )

    def _specs(self, raw: object, a: ObjectType, b: ObjectType) -> set[int]:
        """``[{associationCategory, associationTypeId}]`` -> type ids (400 on an unknown one)."""
        if not isinstance(raw, list) or not raw:
            raise _bad("Invalid input JSON: expected a non-empty list of association types")
        known = association_types(a.name, b.name)
        ids: set[int] = set()
        for spec in raw:
            if not isinstance(spec, dict):
                raise _bad("Invalid input JSON: every association type must be an object")
            tid = spec.get("associationTypeId")
            cat = spec.get("associationCategory")
            if not _is_int(tid) or tid not in known or known[tid].category != cat:
                raise _bad(
                    f"{cat} {tid} is not a valid association type between {a.name} and {b.name}"
                )
            ids.add(tid)
        return ids

    def _to_json(self, rec: ContactRecord, types: list[int], a: ObjectType) -> JsonDict:
        known = association_types(a.name, rec.kind.name)
        ordered = sorted(types, key=lambda t: (known[t].label is None, t))
        return {
            "toObjectId": rec.num_id,
            "associationTypes": [_type_json(known[t]) for t in ordered],
        }

    def _page(
        self, rec: ContactRecord, b: ObjectType, after: str | None, limit: int
    ) -> tuple[list[JsonDict], str | None]:
        if after not in (None, "") and not _NUMERIC_ID.match(str(after)):
            raise _bad(f"Invalid 'after' value: {after!r}")
        start = int(after) if after else -1
        links = [(o, t) for o, t in self.portal.associations_of(rec, b) if o.num_id > start]
        page = links[:limit]
        nxt = str(page[-1][0].num_id) if len(links) > limit and page else None
        return [self._to_json(o, t, rec.kind) for o, t in page], nxt

    # -- per record ----------------------------------------------------------------------------
    def _assoc_list(self, req: Request, m: dict[str, str]) -> Response:
        a, b = self._assoc_types(m)
        rec = self._record(a, m["id"])
        if rec is None:
            return self._missing(a, m["id"])
        limit = self._int_param(req, "limit", ASSOCIATIONS_PAGE_MAX, 1, ASSOCIATIONS_PAGE_MAX)
        results, nxt = self._page(rec, b, req.param("after"), limit)
        body: JsonDict = {"results": results}
        if nxt is not None:
            body["paging"] = self._next_page(req, nxt)
        return Response(200, body)

    def _pair(self, m: Mapping[str, str]) -> tuple[ContactRecord, ContactRecord] | Response:
        a, b = self._assoc_types(m)
        rec = self._record(a, m["id"])
        if rec is None:
            return self._missing(a, m["id"])
        other = self._record(b, m["toId"])
        if other is None:
            return self._missing(b, m["toId"])
        return rec, other

    def _assoc_put_default(self, req: Request, m: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        pair = self._pair(m)
        if isinstance(pair, Response):
            return pair
        rec, other = pair
        self.portal.associate(rec, other, set())
        return Response(200, self._default_batch([(rec, other)], started))

    def _default_batch(
        self, pairs: list[tuple[ContactRecord, ContactRecord]], started: int
    ) -> JsonDict:
        results = []
        for rec, other in pairs:
            unlabeled = unlabeled_type(rec.kind.name, other.kind.name)
            assert unlabeled is not None
            results.append(
                {
                    "from": {"id": rec.id},
                    "to": {"id": other.id},
                    "associationSpec": {
                        "associationCategory": unlabeled.category,
                        "associationTypeId": unlabeled.type_id,
                    },
                }
            )
        return {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(self.portal.now_ms()),
        }

    def _labels_json(self, rec: ContactRecord, other: ContactRecord) -> JsonDict:
        known = association_types(rec.kind.name, other.kind.name)
        types = next(
            (t for o, t in self.portal.associations_of(rec, other.kind) if o.id == other.id), []
        )
        return {
            "fromObjectTypeId": rec.kind.type_id,
            "fromObjectId": rec.num_id,
            "toObjectTypeId": other.kind.type_id,
            "toObjectId": other.num_id,
            "labels": [known[t].label for t in types if known[t].label is not None],
        }

    def _assoc_put_labeled(self, req: Request, m: dict[str, str]) -> Response:
        a, b = self._assoc_types(m)
        if req.json_error is not None:
            raise _bad(f"Invalid input JSON on {req.json_error}")
        type_ids = self._specs(req.json, a, b)
        pair = self._pair(m)
        if isinstance(pair, Response):
            return pair
        rec, other = pair
        self.portal.associate(rec, other, type_ids)
        return Response(201, self._labels_json(rec, other))

    def _assoc_delete(self, req: Request, m: dict[str, str]) -> Response:
        pair = self._pair(m)
        if isinstance(pair, Response):
            return pair
        self.portal.disassociate(*pair)
        return Response(204)

    # -- batch ---------------------------------------------------------------------------------
    def _assoc_inputs(self, req: Request, most: int) -> list[JsonDict]:
        body = self._json_object(req)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _bad("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > most:
            raise _bad(f"Batch input has {len(inputs)} inputs; at most {most} inputs are allowed")
        for i, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise _bad(f"Invalid input JSON: inputs[{i}] must be an object")
        return inputs

    def _ref(self, item: Mapping[str, Any], key: str) -> str:
        ref = item.get(key)
        if not isinstance(ref, dict):
            raise _bad(f"Invalid input JSON: '{key}' must be an object with an 'id'")
        return _id_text(ref.get("id"), f"{key}.id")

    def _not_found_batch_error(self, ot: ObjectType, ids: list[str]) -> JsonDict:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"No {ot.singular} with IDs {', '.join(ids)} exist",
            "context": {"ids": ids},
            "links": {},
            "errors": [],
        }

    def _batch_body(
        self, results: list[JsonDict], errors: list[JsonDict], started: int
    ) -> JsonDict:
        body: JsonDict = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(self.portal.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return body

    def _assoc_batch_read(self, req: Request, m: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        a, b = self._assoc_types(m)
        inputs = self._assoc_inputs(req, ASSOCIATIONS_BATCH_READ_MAX)
        results: list[JsonDict] = []
        missing: list[str] = []
        for item in inputs:
            oid = _id_text(item.get("id"))
            rec = self._record(a, oid)
            if rec is None:
                missing.append(oid)
                continue
            after = item.get("after")
            page, nxt = self._page(rec, b, None if after is None else str(after), 500)
            result: JsonDict = {"from": {"id": oid}, "to": page}
            if nxt is not None:
                result["paging"] = {"next": {"after": nxt}}
            results.append(result)
        errors = [self._not_found_batch_error(a, missing)] if missing else []
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _resolve_pairs(
        self, a: ObjectType, b: ObjectType, inputs: list[JsonDict]
    ) -> tuple[list[tuple[JsonDict, ContactRecord, ContactRecord]], list[JsonDict]]:
        ok: list[tuple[JsonDict, ContactRecord, ContactRecord]] = []
        missing_from: list[str] = []
        missing_to: list[str] = []
        for item in inputs:
            fid, tid = self._ref(item, "from"), self._ref(item, "to")
            rec, other = self._record(a, fid), self._record(b, tid)
            if rec is None:
                missing_from.append(fid)
            elif other is None:
                missing_to.append(tid)
            else:
                ok.append((item, rec, other))
        errors = []
        if missing_from:
            errors.append(self._not_found_batch_error(a, missing_from))
        if missing_to:
            errors.append(self._not_found_batch_error(b, missing_to))
        return ok, errors

    def _assoc_batch_create(self, req: Request, m: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        a, b = self._assoc_types(m)
        inputs = self._assoc_inputs(req, ASSOCIATIONS_BATCH_MAX)
        specs = [self._specs(item.get("types"), a, b) for item in inputs]
        by_item = {id(item): s for item, s in zip(inputs, specs, strict=True)}
        ok, errors = self._resolve_pairs(a, b, inputs)
        results = []
        for item, rec, other in ok:
            self.portal.associate(rec, other, by_item[id(item)])
            results.append(self._labels_json(rec, other))
        return Response(207 if errors else 201, self._batch_body(results, errors, started))

    def _assoc_batch_default(self, req: Request, m: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        a, b = self._assoc_types(m)
        inputs = self._assoc_inputs(req, ASSOCIATIONS_BATCH_MAX)
        ok, errors = self._resolve_pairs(a, b, inputs)
        for _, rec, other in ok:
            self.portal.associate(rec, other, set())
        body = self._default_batch([(r, o) for _, r, o in ok], started)
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return Response(207 if errors else 200, body)

    def _assoc_batch_archive(self, req: Request, m: dict[str, str]) -> Response:
        a, b = self._assoc_types(m)
        inputs = self._assoc_inputs(req, ASSOCIATIONS_BATCH_MAX)
        for item in inputs:
            rec = self._record(a, self._ref(item, "from"))
            targets = item.get("to")
            if not isinstance(targets, list):
                raise _bad("Invalid input JSON: 'to' must be a list of {id}")
            for t in targets:
                if not isinstance(t, dict):
                    raise _bad("Invalid input JSON: 'to' must be a list of {id}")
                other = self._record(b, _id_text(t.get("id"), "to.id"))
                if rec is not None and other is not None:
                    self.portal.disassociate(rec, other)
        return Response(204)

    def _assoc_batch_labels_archive(self, req: Request, m: dict[str, str]) -> Response:
        a, b = self._assoc_types(m)
        inputs = self._assoc_inputs(req, ASSOCIATIONS_BATCH_MAX)
        specs = [self._specs(item.get("types"), a, b) for item in inputs]
        for item, type_ids in zip(inputs, specs, strict=True):
            rec = self._record(a, self._ref(item, "from"))
            other = self._record(b, self._ref(item, "to"))
            if rec is not None and other is not None:
                self.portal.disassociate(rec, other, type_ids)
        return Response(204)

    def _assoc_labels(self, req: Request, m: dict[str, str]) -> Response:
        a, b = self._assoc_types(m)
        known = association_types(a.name, b.name).values()
        ordered = sorted(known, key=lambda t: (t.label is None, t.type_id))
        return Response(200, {"results": [_type_json(t) for t in ordered]})
