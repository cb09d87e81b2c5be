"""Rules calibrate would add: behaviours in the state DB that predict conversion and that no
current rule counts.

From each labelled training contact's events before its outcome (page paths, referrer hosts,
form names, UTM sources, e-mail campaigns) and its profile (job title, country), every *key*
(`page /scholarship`, `referrer partner.example`, ...) a contact has is a candidate when no
current rule counts it: no rule with a condition of its own matched the event (a frequency rule
that counts "any page but careers pages" does not count a particular page), and, for the
profile, no profile rule reads that field's value. Keys on fewer than `min_support` contacts or
on more than half of them (a behaviour most contacts share says little) are dropped.

Each candidate gets its lift with a 95% interval. A candidate is **strong** when its lift interval
at 99.9% (a stricter bar, since many keys are tried) excludes 1; the strong event candidates are
fitted together with the current features (the same L2 logistic regression and the same scale
as the refit points), and those whose points keep the sign of their lift are added to the
suggested model as count-once rules in a category of their own (`suggested`), named `new_...`
and described "(new: suggested by calibrate)". Profile candidates are proposed, not added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector.calibrate.observe import Dataset, Feature, Observation
from connector.calibrate.stats import Interval, lift_interval
from connector.model.loader import LoadedModel
from connector.model.schema import Match
from connector.scoring.engine import compile_model
from connector.types import Contact, Event

Z999 = 3.2905267314919255
NEW_CATEGORY = "suggested"
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str  # "page /scholarship"
    kind: str  # page | referrer | form | utm_source | campaign | title | country
    value: str
    event: str | None  # the event type of an engagement candidate; None for the profile
    fired: int
    fired_converted: int
    not_fired: int
    not_fired_converted: int
    lift: Interval | None
    strong: bool
    points: int | None = None  # suggested points (strong event candidates)
    added: bool = False  # in the suggested model

    @property
    def name(self) -> str:
        slug = _SLUG.sub("_", self.value.lower()).strip("_")[:40] or "root"
        return f"new_{self.kind}_{slug}"

    def rule(self) -> dict[str, Any]:
        """The rule as it goes into the model file (count once: the cap is its points)."""
        assert self.points is not None and self.event is not None
        when: dict[str, Any]
        if self.kind == "page":
            when = {"url": {"glob": f"*{self.value}*"}}
        elif self.kind == "referrer":
            when = {"referrer": {"glob": f"*://{self.value}*"}}
        elif self.kind == "utm_source":
            when = {"url": {"glob": f"*utm_source={self.value}*"}}
        elif self.kind == "form":
            when = {"form": {"any": [self.value]}}
        else:
            when = {"campaign": {"any": [self.value]}}
        return {
            "name": self.name,
            "category": NEW_CATEGORY,
            "event": self.event,
            "points": self.points,
            "cap": abs(self.points),
            "when": when,
            "description": f"{self.key} (new: suggested by calibrate)",
        }


def _event_keys(ev: Event) -> Iterable[tuple[str, str]]:
    for kind, value in _raw_event_keys(ev):
        if kind in ("page", "referrer", "utm_source") and any(ch in value for ch in "*?[]"):
            continue  # not expressible as a glob without escaping: not proposed
        yield kind, value


def _raw_event_keys(ev: Event) -> Iterable[tuple[str, str]]:
    a = ev.attributes
    if ev.type == "page_view":
        url = str(a.get("url") or "")
        if url:
            parts = urlsplit(url)
            path = "/" + "/".join(s for s in parts.path.split("/") if s)[:80]
            yield "page", path
            for src in parse_qs(parts.query).get("utm_source", [])[:1]:
                yield "utm_source", src.lower()[:60]
        ref = str(a.get("referrer") or "")
        if ref:
            host = (urlsplit(ref).hostname or "").removeprefix("www.")
            if host:
                yield "referrer", host
    elif ev.type == "form_submit" and a.get("form"):
        yield "form", str(a["form"])[:80]
    elif ev.type.startswith("email_") and a.get("campaign"):
        yield "campaign", str(a["campaign"])[:80]


class _Counter:
    def __init__(self, model: LoadedModel) -> None:
        self.cm = compile_model(model)
        m = model.model
        self.profile_fields = {k for r in m.fit.rules for k in r.when} | {
            k for f in m.fit.force for k in f.when
        }
        self.title_read = bool(
            self.profile_fields & {"title", "seniority", "department", "title_rule", "title_flags"}
        )

    def counted(self, ev: Event) -> bool:
        """Does a rule with a condition of its own count this event? (A rule without
        conditions counts every event of its type, unless it is a frequency rule.) An event
        of a type no rule listens to (an `email_delivered` a named score ignores) is not."""
        if ev.type not in self.cm.type_fields:
            return False
        for cr, _pts, _label in self.cm.matches(ev.type, ev.attributes):
            when = cr.rule.when
            if not when:
                if cr.rule.frequency is None:
                    return True
                continue
            if any(_specific(v) for v in when.values()):
                return True
        return False


def _specific(v: object) -> bool:
    """A condition that picks values out (not only "anything but these")."""
    if isinstance(v, Match):
        return not v.model_fields_set <= {"not_in_list", "not_"}
    return True


def _profile_keys(c: Contact, counter: _Counter) -> Iterable[tuple[str, str]]:
    """Profile values no profile rule reads (a rule on the title or the country reads them
    all: its points say what they are worth)."""
    if c.job_title and not counter.title_read:
        yield "title", c.job_title.strip().lower()[:60]
    if c.country and "country" not in counter.profile_fields:
        yield "country", c.country.strip().upper()[:40]


class CandidateSearch:
    """The candidates found on the training contacts, and which keys each contact has (so the
    refit reads no event twice)."""

    def __init__(self, candidates: list[Candidate], keys: dict[str, set[tuple[str, str]]]):
        self.candidates = candidates
        self.keys = keys


def find_candidates(
    ds: Dataset,
    model: LoadedModel,
    train: Sequence[Observation],
    *,
    min_support: int,
) -> CandidateSearch:
    """Candidates on the training contacts, strongest lift first (see the module docstring)."""
    counter = _Counter(model)
    label = {o.contact_id: o.converted for o in train}
    seen: dict[tuple[str, str], set[str]] = {}
    event_of: dict[tuple[str, str], str] = {}
    by_contact: dict[str, set[tuple[str, str]]] = {}
    memo: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
    for contact, events, _enr, outcome in ds.iter_labelled(list(label)):
        end = outcome.observation_end(ds.horizon)
        keys: set[tuple[str, str]] = set()
        for ev in events:
            if ev.occurred_at >= end or ev.type in ds.types.sales:
                continue
            at = ev.attributes
            sig: tuple[Any, ...] = (
                ev.type,
                at.get("url"),
                at.get("referrer"),
                at.get("form"),
                at.get("campaign"),
            )
            try:
                found = memo.get(sig)
            except TypeError:  # an unhashable attribute
                found, sig = None, ()
            if found is None:
                found = () if counter.counted(ev) else tuple(_event_keys(ev))
                if sig and len(memo) < 200_000:
                    memo[sig] = found
            for k in found:
                keys.add(k)
                event_of.setdefault(k, ev.type)
        keys.update(_profile_keys(contact, counter))
        by_contact[contact.id] = keys
        for k in keys:
            seen.setdefault(k, set()).add(contact.id)
    n = len(train)
    total_conv = sum(label.values())
    out: list[Candidate] = []
    for (kind, value), ids in seen.items():
        n1 = len(ids)
        if n1 < min_support or n1 > n // 2:
            continue
        a = sum(label[i] for i in ids)
        n0, c = n - n1, total_conv - a
        li = lift_interval(a, n1, c, n0)
        strict = lift_interval(a, n1, c, n0, z=Z999)
        strong = strict is not None and (strict.low > 1 or strict.high < 1)
        event = event_of.get((kind, value))
        out.append(Candidate(f"{kind} {value}", kind, value, event, n1, a, n0, c, li, strong))
    out.sort(key=lambda x: (not x.strong, -(x.lift.value if x.lift else 0.0), x.key))
    wanted = {(c.kind, c.value) for c in out if c.strong and c.event is not None}
    return CandidateSearch(out, {cid: ks & wanted for cid, ks in by_contact.items()})


def candidate_features(cands: Sequence[Candidate]) -> list[Feature]:
    """Strong event candidates as refittable features (1 when the contact has the key)."""
    out: list[Feature] = []
    for c in cands:
        if c.strong and c.event is not None and all(f.name != c.name for f in out):
            out.append(
                Feature(c.name, c.name, None, 1 if (c.lift and c.lift.value > 1) else -1,
                        NEW_CATEGORY, c.key, -1, None, 1.0, section="new")
            )  # fmt: skip
    return out


def with_candidate_units(
    search: CandidateSearch | None, obs: Sequence[Observation]
) -> list[Observation]:
    """The observations with a unit per strong event candidate the contact has."""
    import dataclasses

    if search is None:
        return list(obs)
    names = {(c.kind, c.value): c.name for c in search.candidates}
    out: list[Observation] = []
    for o in obs:
        keys = search.keys.get(o.contact_id)
        if keys:
            units = dict(o.units)
            units.update(dict.fromkeys((names[k] for k in keys), 1.0))
            o = dataclasses.replace(o, units=units)
        out.append(o)
    return out
