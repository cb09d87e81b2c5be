"""Bad input: hostile and malformed data from the API, files and settings gives a clear error
for the bad record (a dead letter naming it, or a one-line message) and the rest flows; the
parsers, driven by hypothesis, never raise anything but InputError. Each test is one row of
docs/reliability.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from .reliability_matrix import names, run_scenario


@pytest.mark.parametrize("name", names("Bad input"))
def test_bad_input(name: str, tmp_path: Path) -> None:
    run_scenario(name, tmp_path)


# -- regressions of the bugs the scenarios found (fast, named) ------------------------------

EDGES = [
    "9999-12-31T23:59:59-23:59",  # past datetime.max once in UTC: was an OverflowError
    "0001-01-01T00:00:00+23:59",  # before datetime.min in UTC: was an OverflowError
    10**5000,  # an integer too long to print: was a ValueError from the message
    True,  # was reported as "missing"
]


@pytest.mark.parametrize("value", EDGES, ids=["max-offset", "min-offset", "huge-int", "bool"])
def test_parse_timestamp_edges_are_input_errors_with_short_messages(value: object) -> None:
    from connector.errors import InputError
    from connector.parse import parse_timestamp

    with pytest.raises(InputError) as err:
        parse_timestamp(value, "occurredAt")
    assert len(str(err.value)) < 120
    assert str(err.value).startswith("occurredAt: ")


def test_writes_in_flight_are_kept_per_contact_until_cleared(tmp_path: Path) -> None:
    from connector.state.store import StateStore

    with StateStore.open(tmp_path / "s.db") as store:
        store.set_in_flight("hubspot", {"1": {"score": "5"}, "2": {"score": "7"}})
        store.set_in_flight("marketo", {"1": {"score": "9"}})
        store.set_in_flight("hubspot", {"2": {"score": "8"}})
        assert store.writes_in_flight("hubspot") == {"1": {"score": "5"}, "2": {"score": "8"}}
        store.clear_in_flight("hubspot", ["1", "3"])
        assert store.writes_in_flight("hubspot") == {"2": {"score": "8"}}
        assert store.writes_in_flight("marketo") == {"1": {"score": "9"}}
