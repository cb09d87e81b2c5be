"""Write-back: `POST leads.json` (updateOnly by id, <= 300 a call) with a per-record outcome,
and the read-back that confirms what the instance shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.crm.base import STAGE
from connector.crm.marketo.calls import MAX_BATCH, RETRYABLE_CODES, MarketoApiError, _Rejected, log
from connector.crm.marketo.fields import FieldsMixin
from connector.errors import (
    InputError,
    RetryableError,
)
from connector.parse import parse_timestamp
from connector.retry import call_with_retry
from connector.types import WriteBack, WriteOutcome


def _shows(want: Any, shown: Any) -> bool:
    """Does Marketo show the value we wrote (`want`, typed as sent)? A cleared field reads back
    as null or ""; numbers may come back as text or as floats; times in another format and
    without their milliseconds."""
    if want is None:
        return shown is None or shown == ""
    if isinstance(want, bool):
        return shown is want or (isinstance(shown, str) and shown.lower() == str(want).lower())
    if isinstance(want, int | float):
        if isinstance(shown, bool) or shown is None:
            return False
        try:
            return float(shown) == float(want)
        except (TypeError, ValueError):
            return False
    if not isinstance(shown, str):
        return False
    if shown == want:
        return True
    try:  # Marketo keeps datetime fields to the second
        return parse_timestamp(want).replace(microsecond=0) == parse_timestamp(shown).replace(
            microsecond=0
        )
    except InputError:
        return False


class WritesMixin(FieldsMixin):
    """Lead writes, outcomes and read-back."""

    # -- write-back ------------------------------------------------------------------------
    def _value(self, ours: str, fname: str, value: str) -> Any:
        if ours == STAGE:
            mapped = self.config.stage_values.get(value)
            if mapped is None:
                raise LookupError(value)
            return mapped
        info = (self._fields or {}).get(fname)
        dtype = info.data_type if info is not None else "string"
        if value == "":
            return None
        if dtype == "integer":
            try:
                return round(float(value))
            except ValueError:
                return value
        if dtype in ("float", "currency"):
            try:
                return float(value)
            except ValueError:
                return value
        if dtype == "boolean":
            return value.strip().lower() in ("true", "1", "yes")
        return value

    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        if writes and self._fields is None:
            self.describe()
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch]))
        return outcomes

    def _record_for(self, w: WriteBack) -> dict[str, Any]:
        """The lead record a write sends: `id` and the mapped fields, typed for the instance."""
        record: dict[str, Any] = {"id": int(w.contact_id)}
        fmap = self.field_map()
        for ours, value in w.properties.items():
            fname = fmap.get(ours, ours)
            if not fname:
                continue  # not mapped onto this instance
            try:
                record[fname] = self._value(ours, fname, value)
            except LookupError:
                log.warning("no Marketo status value for stage %r: not written", value)
        return record

    def _write_batch(self, batch: Sequence[WriteBack]) -> list[WriteOutcome]:
        done: dict[str, WriteOutcome] = {}
        inputs: list[dict[str, Any]] = []
        sent: list[str] = []
        for w in batch:
            if not w.contact_id.isdigit():
                done[w.contact_id] = WriteOutcome(
                    w.contact_id, False, False, "not a Marketo lead id"
                )
                continue
            record = self._record_for(w)
            if len(record) == 1:
                done[w.contact_id] = WriteOutcome(w.contact_id, True)
                continue
            inputs.append(record)
            sent.append(w.contact_id)
        if inputs:
            done.update(self._send_batch(inputs, sent))
        return [done[w.contact_id] for w in batch]

    def _send_batch(self, inputs: list[dict[str, Any]], ids: list[str]) -> dict[str, WriteOutcome]:
        """One leads.sync, retried by the one retry policy. An attempt that ends without a
        readable answer (timeout, dropped connection, 5xx, a transient error code) may have
        been applied: before the next attempt the leads are read back, and those already
        showing our values count as written, so none is applied twice. Only a refusal before
        any work (429, 606, 615) is simply sent again."""
        remaining = list(zip(ids, inputs, strict=True))
        arrived: set[str] = set()
        unsure = False

        def attempt() -> dict[str, Any] | None:
            nonlocal remaining, unsure
            if unsure:
                got = self._records_shown([rec for _, rec in remaining])
                arrived.update(got)
                remaining = [(cid, rec) for cid, rec in remaining if cid not in got]
                unsure = False
                if not remaining:
                    return None
            body = {
                "action": "updateOnly",
                "lookupField": "id",
                "input": [rec for _, rec in remaining],
            }
            unsure = True
            try:
                data = self._authed("leads.sync", "POST", "/rest/v1/leads.json", json_body=body)
            except _Rejected:
                unsure = False
                raise
            except MarketoApiError:
                unsure = False  # a definite refusal of the whole batch
                raise
            unsure = False
            return dict(data)

        failed: tuple[bool, str] | None = None  # (retryable, why) when the batch failed whole
        try:
            data = call_with_retry(
                attempt, self.retry_policy, sleep=self._sleep, on_retry=self._on_retry("leads.sync")
            )
        except RetryableError as exc:
            data, failed = None, (True, str(exc))
        except MarketoApiError as exc:
            data, failed = None, (False, f"{exc.code}: {exc.message}")
        out = {cid: WriteOutcome(cid, True) for cid in arrived}  # read back: already there
        if failed is not None:
            out.update({cid: WriteOutcome(cid, False, *failed) for cid, _ in remaining})
            return out
        if data is None:
            return out
        results = [r for r in data.get("result") or [] if isinstance(r, dict)]
        by_seq: dict[int, dict[str, Any]] = {}
        for pos, item in enumerate(results):
            seq = item.get("seq")
            by_seq[seq if isinstance(seq, int) else pos] = item
        for pos, (cid, _) in enumerate(remaining):
            r = by_seq.get(pos)
            status = str(r.get("status", "")) if r is not None else ""
            if r is None:
                out[cid] = WriteOutcome(cid, False, True, "not in Marketo's batch response")
            elif status in ("updated", "created"):
                out[cid] = WriteOutcome(cid, True)
            else:
                reasons = [x for x in r.get("reasons") or [] if isinstance(x, dict)]
                code = str(reasons[0].get("code", "")) if reasons else ""
                text = (
                    "; ".join(f"{x.get('code', '')}: {x.get('message', '')}" for x in reasons)
                    or f"{status or 'skipped'} without a reason"
                )
                out[cid] = WriteOutcome(
                    cid,
                    ok=False,
                    retryable=code in RETRYABLE_CODES,
                    error=text[:500],
                    archived=code == "1004",
                )
        return out

    def confirm_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """The ids whose Marketo values already equal the write, read back by id.

        After a write whose outcome is unknown (the process died, the answer never came), this
        tells a write Marketo applied from one it never got, so nothing is sent twice."""
        if writes and self._fields is None:
            self.describe()
        confirmed: set[str] = set()
        records: list[dict[str, Any]] = []
        for w in writes:
            if not w.contact_id.isdigit():
                continue
            record = self._record_for(w)
            if len(record) == 1:
                confirmed.add(w.contact_id)  # nothing of it is sent to this instance
            else:
                records.append(record)
        return confirmed | self._records_shown(records)

    def _records_shown(self, records: Sequence[Mapping[str, Any]]) -> set[str]:
        """Ids of the records whose every field Marketo already shows (<= 300 a read)."""
        shown_ids: set[str] = set()
        for i in range(0, len(records), MAX_BATCH):
            chunk = records[i : i + MAX_BATCH]
            names = sorted({k for rec in chunk for k in rec if k != "id"})
            try:
                data = self._call(
                    "leads.get",
                    "GET",
                    "/rest/v1/leads.json",
                    params={
                        "filterType": "id",
                        "filterValues": ",".join(str(rec["id"]) for rec in chunk),
                        "fields": ",".join(["id", *names]),
                        "batchSize": str(MAX_BATCH),
                    },
                )
            except MarketoApiError as exc:  # cannot be read back for good: not applied
                log.warning("marketo cannot read back %d lead(s): %s", len(chunk), exc)
                continue
            found = {
                str(lead.get("id")): lead
                for lead in data.get("result") or []
                if isinstance(lead, dict)
            }
            for rec in chunk:
                lead = found.get(str(rec["id"]))
                if lead is not None and all(
                    _shows(want, lead.get(k)) for k, want in rec.items() if k != "id"
                ):
                    shown_ids.add(str(rec["id"]))
        return shown_ids
