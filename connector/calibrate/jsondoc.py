"""`leadscore calibrate --json`: the calibration as one JSON document (connector.jsonout).

The keys are the fields of the result records: `counts`, `lift`, `insufficient`, `notes`,
`comparison`, the `suggestion` (its version, threshold, rates, point changes, caps, grades and
candidate rules; the YAML text is the file `--out` names, `written`) and, with account scoring
on, `accounts` (account outcomes, conversion by account grade and MQA, the contacts at an MQA
and their lift, the MQA thresholds and the suggested one; each account without its replay).
"""

from __future__ import annotations

from typing import Any

from connector.calibrate.core import CalibrationResult
from connector.jsonout import jsonable


def calibration_document(result: CalibrationResult, written: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = jsonable(result, skip=("suggestion", "accounts"))
    s = result.suggestion
    doc["suggestion"] = (
        None if s is None else jsonable(s, skip=("model", "text", "edits", "additions", "header"))
    )
    doc["written"] = written
    a = result.accounts
    if a is None:
        doc["accounts"] = None
        return doc
    accounts: dict[str, Any] = jsonable(a, skip=("observations",))
    accounts["observations"] = [
        {
            **jsonable(o, skip=("trail",)),
            "peak_score": o.peak(a.rule.min_people),
            "mqa": a.rule.mqa(o),
        }
        for o in a.observations
    ]
    doc["accounts"] = accounts
    return doc
