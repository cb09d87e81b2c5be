"""The project's records (connector.types.record): immutable for the type checker, hashable and
picklable as frozen dataclasses are, and plain dataclasses with slots at run time."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from connector.types import AccountMember, Contact, Event, LifecycleDecision, Reason, ScoreResult

REPO = Path(__file__).resolve().parents[1]


def _result() -> ScoreResult:
    return ScoreResult(
        contact_id="c1",
        score=40.0,
        engagement_points=40.0,
        fit_points=80.0,
        grade="A",
        lifecycle=LifecycleDecision("lead", None, False, None),
        profile_mismatch=False,
        model_version="v1",
        model_fingerprint="f",
        scored_at=datetime(2026, 11, 1, tzinfo=UTC),
        next_change_at=None,
        reasons=(Reason("demo", "hand_raiser", 40.0, "asked for a demo", ("hubspot:1",)),),
    )


def test_records_hash_and_compare_by_their_fields() -> None:
    a, b = _result(), _result()
    assert a == b and hash(a) == hash(b)
    assert {a.reasons[0], b.reasons[0]} == {
        Reason("demo", "hand_raiser", 40.0, "asked for a demo", ("hubspot:1",))
    }
    changed = Reason("demo", "hand_raiser", 30.0, "asked for a demo", ("hubspot:1",))
    assert changed != a.reasons[0] and hash(changed) != hash(a.reasons[0])
    assert not hasattr(a, "__dict__")  # slots: no per-instance dict
    assert (
        Contact("c1").properties == {} and Contact("c1").properties is not Contact("c1").properties
    )


def test_records_survive_pickling() -> None:
    """A parallel rescore's workers send their results back pickled."""
    a = _result()
    assert pickle.loads(pickle.dumps(a)) == a
    ev = Event("hubspot", "1", "c1", "page_view", datetime(2026, 11, 1, tzinfo=UTC), {"url": "/x"})
    assert pickle.loads(pickle.dumps(ev)) == ev


def test_mypy_rejects_assigning_a_field(tmp_path: Path) -> None:
    """What `frozen=True` enforced at run time, the type checker enforces (CI runs `mypy
    --strict connector`: tests/test_static_checks.py): code that assigns a field of a record
    does not pass."""
    snippet = tmp_path / "mutate.py"
    snippet.write_text(
        "from connector.types import AccountMember, Event, Reason\n"
        "def f(r: Reason, e: Event, m: AccountMember) -> None:\n"
        "    r.points = 1.0\n"
        "    e.type = 'x'\n"
        "    m.engagement_points = 2.0\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(snippet),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if " error: " in line]
    assert len(errors) == 3, proc.stdout
    # `Reason` and `AccountMember` (plain classes, native in the compiled build): their
    # fields are Final
    assert '"points"' in errors[0] and "final" in errors[0].lower()
    assert '"type"' in errors[1] and '"Event"' in errors[1] and "read-only" in errors[1]
    assert '"engagement_points"' in errors[2] and "final" in errors[2].lower()


def test_account_member_compares_hashes_and_pickles_by_its_fields() -> None:
    """`AccountMember` is no record (a plain class, so that the compiled build makes it a
    native one: connector/member.py) but behaves as one: equal and hashed by its fields,
    picklable, shown with them."""
    hits = (("pricing_page", 1_790_000_000.5),)
    a = AccountMember("c1", "Dana Whitfield", "VP Marketing", "vp", "A", 45.0, hits)
    b = AccountMember("c1", "Dana Whitfield", "VP Marketing", "vp", "A", 45.0, hits)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != AccountMember("c1", "Dana Whitfield", "VP Marketing", "vp", "A", 44.0, hits)
    assert a != ("c1", "Dana Whitfield")  # another type: never equal
    assert AccountMember("c2", "x", None, "entry", "D", 0.0).hits == ()
    assert pickle.loads(pickle.dumps(a)) == a
    assert repr(a) == (
        "AccountMember(contact_id='c1', name='Dana Whitfield', title='VP Marketing', "
        "seniority='vp', grade='A', engagement_points=45.0, "
        "hits=(('pricing_page', 1790000000.5),))"
    )


def test_reason_compares_hashes_pickles_and_shows_as_the_record_did() -> None:
    """`Reason` is no record either (connector/reason.py: native in the compiled build) but
    behaves as the frozen dataclass it was: equal and hashed by its fields, picklable, shown
    with them in the dataclass's form; its points kept as given (a whole number read back from
    the state DB's JSON stays an int in the compiled build too, so its text does not change)."""
    a = Reason("demo", "hand_raiser", 40.0, "asked for a demo", ("hubspot:1",))
    b = Reason(rule="demo", category="hand_raiser", points=40.0, text="asked for a demo",
               event_ids=("hubspot:1",))  # fmt: skip
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert (a != b) is False and a != Reason("demo", "hand_raiser", 41.0, "asked for a demo")
    assert a != AccountMember("demo", "hand_raiser", None, "vp", "A", 40.0)  # another class
    assert a.kind == "engagement" and Reason("g", "fit", 0.0, "x", kind="fit").kind == "fit"
    assert a != Reason("demo", "hand_raiser", 40.0, "asked for a demo", ("hubspot:2",))
    assert a != ("demo", "hand_raiser", 40.0)  # another type: never equal
    assert pickle.loads(pickle.dumps(a)) == a
    whole = Reason("webinar", "webinar", 50, "watched", ())
    assert type(whole.points) is int and whole.points == 50
    big = Reason("x", "c", 2**60 + 1, "past a double's digits")
    assert big.points == 2**60 + 1
    assert repr(a) == (
        "Reason(rule='demo', category='hand_raiser', points=40.0, text='asked for a demo', "
        "event_ids=('hubspot:1',), kind='engagement')"
    )
    assert not hasattr(a, "__dict__")
