"""Text from outside (CRM answers, files) made safe to store, encode and show.

A CRM can hand back a lone UTF-16 surrogate (an emoji cut in half by some import: JSON
`"Jos\\ud83d"`), which Python decodes but no UTF-8 sink (SQLite, a log file, an HTTP body)
can encode. `clean_text` replaces every lone surrogate with U+FFFD (a surrogate pair becomes
its character); it is applied where outside text enters the project's types, and the SQLite
writes apply it again only when an encode fails, so clean text costs one regex search.

Control characters (NUL, ESC...) are kept in stored values (a name is stored as the CRM
holds it); `display_text` also drops C0 controls other than tab, newline and carriage
return, DEL and the C1 controls, and the bidirectional formatting characters (U+202E
"right-to-left override" and its kin: a name holding one reverses the rest of a terminal's
line and pushes a table's columns out of line), for the places text is shown: tables, log
lines and exported files (the HTML report).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from connector.industries import HUBSPOT_INDUSTRY_LABELS

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 but tab, LF, CR; DEL and C1; the bidi marks, embeddings, overrides and isolates (ALM,
# LRM, RLM, LRE…RLO, LRI…PDI). Zero-width joiners stay: emoji sequences and scripts use them.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD; the same object when there are none."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_value(value: Any) -> Any:
    """`clean_text` applied to every string (keys included) of a decoded JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def clean_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of SQL parameters with every string cleaned (the retry after an encode error)."""
    return tuple(clean_text(v) if isinstance(v, str) else v for v in row)


def display_text(text: str) -> str:
    """`clean_text`, and control characters other than tab, newline and CR removed (C0, DEL,
    C1, bidi formatting: see above): text that can be written to a UTF-8 log line, file or
    table and shown without garbling it."""
    return _CONTROL.sub("", clean_text(text))


def shown_value(value: Any) -> str:
    """A CRM property/field value as text, as we write it: "" for empty, "true"/"false" for a
    boolean (HubSpot and Marketo may send a number or a boolean where text is due)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def industry_words(raw: str | None) -> str | None:
    """An industry as the model's industry lists and the firmographics files name it: a CRM
    dropdown's internal code (HubSpot's `COMPUTER_SOFTWARE`, `HOSPITAL_HEALTH_CARE`) as its
    label in lower case (`computer software`, `hospital & health care`: the labels of
    :data:`connector.industries.HUBSPOT_INDUSTRIES`), a code not in that list as its words
    (`MY_OWN_OPTION` → `my own option`); free text as it is. Applied where a company is read
    and where a stored one is scored (rows stored before keep their code)."""
    if raw is None or not _INDUSTRY_CODE.fullmatch(raw):
        return raw
    label = HUBSPOT_INDUSTRY_LABELS.get(raw)
    return label.lower() if label is not None else raw.replace("_", " ").lower()


_INDUSTRY_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
