"""A webinar's watched share from what a CRM sends: text, infinite or NaN minutes make no
duration (no share, the rule's `part` tier at most), never a full webinar. Before, `"inf"` and
`"1e400"` minutes scored +50 "watched webinar (full)" (found posting custom events by hand)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.parse import watched_share

from .conftest import NOW, Harness


@pytest.mark.parametrize(
    ("watched", "total", "share"),
    [
        ("58", "60", 58 / 60),
        (58, 60, 58 / 60),
        ("90", "60", 1.0),  # more than its length: all of it
        ("-5", "60", 0.0),
        ("0", "60", 0.0),
        ("inf", "60", None),
        ("1e400", "60", None),
        ("1e400", "1e400", None),  # inf/inf: NaN, once min(1, NaN) = 1
        ("30", "inf", None),
        ("nan", "60", None),
        ("30", "nan", None),
        ("9" * 400, "60", None),  # OverflowError as a float
        ("30", "0", None),
        ("30", "-60", None),
        ("half", "60", None),
        (None, "60", None),
        ("30", None, None),
    ],
)
def test_watched_share(watched: object, total: object, share: float | None) -> None:
    assert watched_share(watched, total) == share


def test_infinite_minutes_are_no_full_webinar_in_a_sync(demo: Harness) -> None:
    h = demo
    assert h.pipeline.sync().status == "ok"
    h.clock[0] = NOW + timedelta(minutes=15)
    props = {"webinar_name": "Inf test", "minutes_watched": "inf", "webinar_minutes": "60"}
    h.sb.add_event("102", "pe4242_webinar_attended", props, NOW + timedelta(minutes=5))
    assert h.pipeline.sync().status == "ok"
    stored = h.store.get_score("hubspot", "102")
    assert stored is not None
    texts = [r.text for r in stored.to_result().reasons if "Inf test" in r.text]
    assert texts and all("(full)" not in t for t in texts), texts
