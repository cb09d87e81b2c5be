"""`calibrate()`: outcomes → lift table → refit points → held-out comparison. Writes nothing.

The caller (the CLI) writes the suggested model with `write_suggestion()`; nothing is applied:
the admin reviews the file, `simulate`s it and then `rescore`s.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connector.calibrate.accounts import AccountCalibration, account_coverage
from connector.calibrate.accounts_refit import AccountsRefit, merged_additions, refit_accounts
from connector.calibrate.candidates import (
    Candidate,
    candidate_features,
    find_candidates,
    with_candidate_units,
)
from connector.calibrate.caps import CapChange, refit_caps
from connector.calibrate.fit import (
    ModelMetrics,
    PointChange,
    baseline_auc,
    metrics,
    refit_points,
    require_sklearn,
    tune_threshold,
)
from connector.calibrate.grades import GradeFit, refit_grades
from connector.calibrate.observe import (
    Dataset,
    EnrichFn,
    Observation,
    OutcomeCounts,
    features_of,
    fit_features_of,
    force_features_of,
)
from connector.calibrate.priority_refit import SHARES, PriorityRefit, refit_priority
from connector.calibrate.stats import RuleLift, lift_table
from connector.calibrate.suggest import (
    Additions,
    PathKey,
    load_suggested,
    model_edits,
    rule_additions,
    write_suggested,
)
from connector.calibrate.target import ScoreTarget, score_target
from connector.model.loader import LoadedModel
from connector.state.store import StateStore


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    horizon: timedelta = timedelta(days=90)
    target_mql_rate: float = 0.10
    min_conversions: int = 30  # below this, nothing is suggested
    test_fraction: float = 0.3  # the newest share of contacts (by first engagement) held out
    min_test_contacts: int = 50
    min_test_conversions: int = 5  # and as many non-conversions, in the test and training sets
    min_rule_fires: int = 10  # fewer training contacts: the rule keeps its points
    regularization: float = 1.0  # scikit-learn's C (inverse L2 strength)
    refit_profile: bool = True  # fit points, grade thresholds and grade points too
    propose_rules: bool = True  # look for rules to add (candidates.py)
    add_new_rules: bool = True  # and put the strong ones in the suggested model
    min_candidate_support: int = 30  # training contacts a proposed rule must fire on
    allow_sign_flips: bool = False
    rate_tolerance: float = 0.01  # keep the current threshold when this close to the target
    version: str | None = None  # of the suggested model; default "<current>-calibrated-<date>"
    accounts: bool = False  # account coverage (accounts.py): account scoring is on
    min_account_conversions: int = 10  # and as many non-conversions, to suggest an MQA threshold

    def __post_init__(self) -> None:
        if self.horizon <= timedelta(0):
            raise ValueError("the horizon must be positive")
        if not 0 < self.target_mql_rate < 1:
            raise ValueError("the target MQL rate must be between 0 and 1 (0.1 = 10%)")
        if not 0 < self.test_fraction < 1:
            raise ValueError("the test fraction must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class Suggestion:
    version: str
    threshold: float
    current_threshold: float
    target_mql_rate: float
    train_mql_rate: float  # the suggested model's, replayed by the engine
    train_mql_rate_current: float
    scale: float  # points per log-odds unit
    changes: tuple[PointChange, ...]
    caps: tuple[CapChange, ...]
    grades: GradeFit | None
    edits: dict[PathKey, Any]
    additions: Additions
    candidates: tuple[Candidate, ...]
    header: tuple[str, ...]
    model: LoadedModel  # validated by the real loader
    text: str  # the YAML (title table by absolute path; `write_suggestion` makes it relative)
    accounts: AccountsRefit | None = None  # the accounts section refit to the new scale
    priority: PriorityRefit | None = None  # the priority bands refit (the lifecycle score's)

    @property
    def sign_flips(self) -> list[PointChange]:
        """Rules whose sign the data says is wrong: applied (`sign flipped`) or not."""
        return [
            c
            for c in self.changes
            if c.status == "sign flipped" or (c.status == "sign kept" and "strongly" in c.note)
        ]


@dataclass(frozen=True, slots=True)
class Comparison:
    train_contacts: int
    test_contacts: int
    split_at: datetime  # test contacts first engaged at or after this
    current: ModelMetrics
    suggested: ModelMetrics
    baseline_auc: float | None = None  # plain logistic regression, same features and split

    @property
    def gap(self) -> float | None:
        """How much ranking (ROC AUC) the suggested points table leaves to the baseline."""
        if self.baseline_auc is None or self.suggested.auc is None:
            return None
        return self.baseline_auc - self.suggested.auc

    @property
    def better(self) -> bool:
        a, b = self.current.auc, self.suggested.auc
        return a is not None and b is not None and b > a


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    model_version: str
    model_fingerprint: str
    as_of: datetime
    options: CalibrationOptions
    counts: OutcomeCounts
    lift: tuple[RuleLift, ...]
    insufficient: str | None = None  # why nothing was suggested
    suggestion: Suggestion | None = None
    comparison: Comparison | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    accounts: AccountCalibration | None = None  # with account scoring on
    score: str = "lifecycle"  # the score calibrated (the lifecycle score's name, or a named one)
    named: bool = False  # a named score (`scores:`), not the lifecycle score

    @property
    def never_fire(self) -> list[RuleLift]:
        return [r for r in self.lift if r.verdict == "never fires"]

    @property
    def wrong_way(self) -> list[RuleLift]:
        return [r for r in self.lift if r.verdict == "wrong way"]


def _split(
    obs: Sequence[Observation], fraction: float
) -> tuple[list[Observation], list[Observation]]:
    ordered = sorted(obs, key=lambda o: (o.first_engaged_at, o.contact_id))
    n_test = round(len(ordered) * fraction)
    cut = len(ordered) - n_test
    return ordered[:cut], ordered[cut:]


def _too_little(
    counts: OutcomeCounts,
    train: Sequence[Observation],
    test: Sequence[Observation],
    o: CalibrationOptions,
) -> str | None:
    if counts.converted < o.min_conversions:
        return (
            f"too little data: {counts.converted} conversion(s) among {counts.labelled} contact(s) "
            f"with a known outcome; at least {o.min_conversions} are needed "
            "(--min-conversions) before the points can be refit without fitting noise"
        )
    t_conv = sum(x.converted for x in test)
    if len(test) < o.min_test_contacts:
        return (
            f"too little data: the held-out (newest) contacts number {len(test)}; at least "
            f"{o.min_test_contacts} are needed to compare the models"
        )
    if min(t_conv, len(test) - t_conv) < o.min_test_conversions:
        return (
            f"too little data: the held-out contacts have {t_conv} conversion(s) and "
            f"{len(test) - t_conv} non-conversion(s); at least {o.min_test_conversions} of each "
            "are needed to compare the models"
        )
    r_conv = sum(x.converted for x in train)
    if min(r_conv, len(train) - r_conv) < o.min_test_conversions:
        return (
            f"too little data: the training contacts have {r_conv} conversion(s) and "
            f"{len(train) - r_conv} non-conversion(s)"
        )
    return None


def calibrate(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    *,
    now: datetime,
    options: CalibrationOptions | None = None,
    enrich: EnrichFn | None = None,
    score: str | None = None,
) -> CalibrationResult:
    """Learn from outcomes (see the package docstring). Reads the state DB; writes nothing.
    `score`: a named score to calibrate (target.py); None: the lifecycle score."""
    o = options or CalibrationOptions()
    require_sklearn()
    target = score_target(model, score)
    whole, model = model, target.view(model)
    notes: list[str] = []
    if target.named and not target.own_fit and o.refit_profile:
        o = dataclasses.replace(o, refit_profile=False)
        notes.append(
            f"the profile (fit points and grades) was not refit: {target.name} shares the fit "
            f"section with the lifecycle score ({whole.lifecycle_name}); calibrate that score "
            "to refit it"
        )
    if target.named and o.accounts:
        notes.append(
            f"account coverage belongs to the lifecycle score ({whole.lifecycle_name}): run "
            "calibrate without --score for it"
        )
    ds = Dataset(store, crm, model, o.horizon, now, enrich, types=target.signal_types(whole))
    obs = ds.observe(model)
    lift = tuple(lift_table(model, obs))
    base = CalibrationResult(
        model.version,
        model.fingerprint,
        now,
        o,
        ds.counts,
        lift,
        notes=tuple(notes),
        accounts=account_coverage(ds, model, min_conversions=o.min_account_conversions)
        if o.accounts and not target.named
        else None,
        score=target.name,
        named=target.named,
    )
    train, test = _split(obs, o.test_fraction)
    reason = _too_little(ds.counts, train, test, o)
    if reason is not None:
        return dataclasses.replace(base, insufficient=reason)

    current_t = float(model.model.lifecycle.mql.threshold)
    fit_feats = fit_features_of(model) if o.refit_profile else []
    search = (
        find_candidates(ds, model, train, min_support=o.min_candidate_support)
        if o.propose_rules
        else None
    )
    cands = search.candidates if search is not None else []
    cand_feats = candidate_features(cands) if o.add_new_rules else []
    fit = refit_points(
        [*features_of(model), *fit_feats, *cand_feats],
        with_candidate_units(search if cand_feats else None, train),
        threshold=current_t,
        target_rate=o.target_mql_rate,
        c=o.regularization,
        min_fires=o.min_rule_fires,
        allow_sign_flips=o.allow_sign_flips,
    )
    version = o.version or f"{model.version}-calibrated-{now:%Y-%m-%d}"
    force_grades = {f.name: f.grade for f in model.model.fit.force}
    grades = refit_grades(fit.changes, train, force_grades) if fit_feats else None
    new_pts = {c.feature: c for c in fit.changes if c.section == "new"}
    changes = [c for c in fit.changes if c.section != "new"]
    taken = [r.name for r in model.model.engagement.rules]
    cands, new_rules = _adopt(cands, new_pts, o.add_new_rules, taken)
    additions = rule_additions(model, new_rules)
    if fit_feats and grades is None:
        changes = [
            dataclasses.replace(
                c,
                suggested=c.current,
                status="kept: profile not refit",
                note="fewer than four distinct profile scores: grades kept",
            )
            if c.section == "fit"
            else c
            for c in changes
        ]
        notes.append(
            "the profile (fit points and grades) was not refit: its rules give fewer than four "
            "distinct profile scores on the training contacts"
        )
    caps = refit_caps(model, changes)
    edits, adds = target.scope(
        model_edits(model, changes, current_t, version, caps, grades), additions
    )
    draft, _ = load_suggested(whole, edits, (), adds)
    train_ids = [x.contact_id for x in train]
    draft_train = ds.observe(target.view(draft), train_ids)
    threshold, train_rate = tune_threshold(
        draft_train, current_t, o.target_mql_rate, o.rate_tolerance
    )
    hand_rate = sum(x.hand_raiser for x in draft_train) / max(1, len(draft_train))
    if hand_rate > o.target_mql_rate + o.rate_tolerance:
        notes.append(
            f"hand-raisers alone are {hand_rate:.1%} of the training contacts, above the target "
            f"MQL rate of {o.target_mql_rate:.1%}: they become MQLs whatever the threshold"
        )
    edits, adds = target.scope(
        model_edits(model, changes, threshold, version, caps, grades), additions
    )
    acc_refit: AccountsRefit | None = None
    bands: PriorityRefit | None = None
    if not target.named:  # the bands and the accounts read the lifecycle score
        # one pass over the stored contacts for both refits: the accounts refit's simulation
        # (when it runs one) gives the bands their contacts' shown scores
        found = refit_accounts(
            model,
            threshold / current_t if threshold > 0 and current_t > 0 else 1.0,
            edits,
            adds,
            store=store,
            crm=crm,
            now=now,
            enrich=enrich,
            use_data=o.accounts,
        )
        band_edits, band_adds, bands = refit_priority(
            model,
            threshold,
            edits,
            adds,
            store=store,
            crm=crm,
            now=now,
            enrich=enrich,
            sim=found[3] if found is not None else None,
        )
        if found is not None and (found[2].numbers or found[2].current_mqas is not None):
            acc_edits, acc_adds, acc_refit, _ = found
            edits, adds = {**edits, **acc_edits}, merged_additions(adds, acc_adds)
        edits, adds = {**edits, **band_edits}, merged_additions(adds, band_adds)
    elif target.index is not None and _own_bands(whole, target.name):
        # a named score's own bands follow its suggested points, as the lifecycle score's do
        # (its contacts, its shown scores now and with the suggestion)
        from connector.calibrate.accounts_refit import OfflineEnricher
        from connector.ops.simulate import model_sides

        draft, _ = load_suggested(whole, edits, (), adds)
        offline = OfflineEnricher(enrich) if enrich is not None else None
        sim, _ = model_sides(store, crm, model, target.view(draft), offline, now)
        band_edits, band_adds, bands = refit_priority(
            model,
            threshold,
            {},
            {},
            store=store,
            crm=crm,
            now=now,
            sim=sim,
            entry=("scores", target.index),
            source=whole,
        )
        edits, adds = {**edits, **band_edits}, merged_additions(adds, band_adds)
    header = _header(
        model,
        ds.counts.labelled,
        o,
        now,
        changes,
        threshold,
        caps,
        grades,
        target,
        acc_refit,
        bands,
    )
    header[-1:-1] = [
        f"NEW rule {c.name}: {c.points:+d} ({c.key}: lift {c.lift.value:.2f} "
        f"[{c.lift.low:.2f}-{c.lift.high:.2f}] on {c.fired} training contacts)."
        for c in cands
        if c.added and c.points is not None and c.lift is not None
    ]
    suggested, text = load_suggested(whole, edits, header, adds)
    test_ids = [x.contact_id for x in test]
    sugg_test = ds.observe(target.view(suggested), test_ids)
    current_rate = sum(x.mql_at(current_t) for x in train) / max(1, len(train))
    suggestion = Suggestion(
        version=version,
        threshold=threshold,
        current_threshold=current_t,
        target_mql_rate=o.target_mql_rate,
        train_mql_rate=train_rate,
        train_mql_rate_current=current_rate,
        scale=fit.scale,
        changes=tuple(changes),
        caps=tuple(caps),
        grades=grades,
        edits=edits,
        additions=adds,
        candidates=tuple(cands),
        header=tuple(header),
        model=suggested,
        text=text,
        accounts=acc_refit,
        priority=bands,
    )
    all_feats = [*features_of(model), *fit_features_of(model), *force_features_of(model)]
    comparison = Comparison(
        train_contacts=len(train),
        test_contacts=len(test),
        split_at=test[0].first_engaged_at,
        current=metrics(model.version, test, current_t),
        suggested=metrics(version, sugg_test, threshold),
        baseline_auc=baseline_auc(all_feats, train, test, o.regularization),
    )
    notes += _baseline_notes(comparison, ds.counts.converted, train, o, cands, target)
    if not comparison.better:
        notes.append(
            "the suggested model does not rank the held-out contacts better than the current "
            "one (ROC AUC): keep the current model unless the lift table says otherwise"
        )
    return dataclasses.replace(
        base, suggestion=suggestion, comparison=comparison, notes=tuple(notes)
    )


def _header(
    model: LoadedModel,
    labelled: int,
    o: CalibrationOptions,
    now: datetime,
    changes: Sequence[PointChange],
    threshold: float,
    caps: Sequence[CapChange] = (),
    grades: GradeFit | None = None,
    target: ScoreTarget | None = None,
    accounts: AccountsRefit | None = None,
    priority: PriorityRefit | None = None,
) -> list[str]:
    days = o.horizon / timedelta(days=1)
    lines = [
        f"Suggested by `leadscore calibrate` on {now:%Y-%m-%d} from {labelled} contacts with a",
        f"known outcome (horizon {days:g} days), starting from model {model.version}.",
    ]
    old_t = model.model.lifecycle.mql.threshold
    if target is not None and target.index is not None:
        where = f"scores[{target.index}] ({target.name})"
        lines += [
            f"Only score {target.name} was calibrated: the points of its rules and tiers, the",
            f"caps that scale with them{', its profile' if target.own_fit else ''}, its "
            + ("threshold, its priority bands" if priority is not None and priority.changed
               else "threshold")
            + " and version differ;",
            f"everything outside {where} is as it was.",
            "NOT applied: review it, check it with `leadscore validate-model`, preview it with",
            f"`leadscore simulate --score {target.name} --model`, then apply it with",
            "`leadscore rescore --model`.",
        ]  # fmt: skip
        if threshold != old_t:
            lines.append(f"Threshold of {target.name}: {old_t:g} -> {threshold:g}.")
        if priority is not None:  # its own bands (a score sharing the model's leaves them)
            lines += _priority_header(priority, target.name)
    else:
        lines += textwrap.wrap(
            "Only points (engagement, tiers, profile), the caps that scale with them, the "
            "grades, lifecycle.mql.threshold"
            + (", the accounts section's points and thresholds" if accounts else "")
            + (", the priority bands" if priority is not None and priority.changed else "")
            + " and version differ from it. NOT applied: review it, check it with `leadscore "
            "validate-model`, preview it with `leadscore simulate --model` and `leadscore "
            "rescore --dry-run --model`, then apply it with `leadscore rescore --model`.",
            width=88,
            break_long_words=False,
            break_on_hyphens=False,
        )
        if threshold != old_t:
            lines.append(f"MQL threshold: {old_t:g} -> {threshold:g}.")
        if accounts is not None:
            lines += _accounts_header(accounts)
        if priority is not None:
            lines += _priority_header(priority)
    if grades is not None:
        g, p = grades.grades, grades.score_points
        lines.append(
            f"Profile refit: grades A >= {g['A']}, B >= {g['B']}, C >= {g['C']} fit points;"
        )
        lines.append(
            f"the grade now adds to the score (A {p['A']:+d}, B {p['B']:+d}, C {p['C']:+d}, "
            f"D {p['D']:+d}); forced grades kept."
        )
    for cap in caps:
        lines.append(
            f"Cap of {cap.kind} {cap.name}: {cap.current} -> {cap.suggested} ({cap.meaning})."
        )
    for c in changes:
        if c.status == "sign flipped":
            lines.append(f"SIGN FLIPPED: {c.feature} {c.current:+d} -> {c.suggested:+d}.")
        elif c.status == "sign kept" and "strongly" in c.note:
            lines.append(
                f"Sign kept, but the data says {c.feature} points the wrong way "
                f"(would be {c.data_suggests:+d}); decide with sales."
            )
    return [*lines, ""]


def _accounts_header(a: AccountsRefit) -> list[str]:
    changed = "; ".join(f"{n.label} {n.current:g} -> {n.suggested:g}" for n in a.numbers)
    lines = [
        f"Accounts refit to the new contact scale (x{a.scale:g}, the MQL threshold's): "
        + (changed or "nothing changed")
        + "."
    ]
    if a.current_mqas is not None:
        lines.append(
            f"MQA threshold chosen to keep the current MQAs: {a.current_mqas} MQA(s) now, "
            f"{a.suggested_mqas} with this model on the same data ({a.kept_mqas} kept)."
        )
    return lines


def _own_bands(whole: LoadedModel, name: str) -> bool:
    found = whole.named_score(name)
    return found is not None and found.own_priority


def _priority_header(p: PriorityRefit, score: str | None = None) -> list[str]:
    how = (
        f"on {p.contacts} stored contacts (contacts now -> with this model)"
        if p.method == SHARES
        else f"x{p.scale:g} ({p.contacts} scored contact(s): too few to keep the bands' shares)"
    )
    whose = f"Priority bands of {score}" if score is not None else "Priority bands"
    lines = [f"{whose} {'refit' if p.changed else 'kept'} {how}:"]
    for b in p.bands:
        counts = (
            f"; {b.contacts_now} -> {b.contacts_suggested} contacts"
            if b.contacts_now is not None
            else ""
        )
        lines.append(f"  band {b.name}: min {b.current:g} -> {b.suggested:g} ({b.how}{counts})")
    return lines


def write_suggestion(
    result: CalibrationResult, model: LoadedModel, out_path: str | Path
) -> LoadedModel:
    """Write the suggested model next to nothing else: one YAML file, validated as written."""
    s = result.suggestion
    if s is None:
        raise ValueError("nothing to write: " + (result.insufficient or "no suggestion"))
    return write_suggested(model, s.edits, out_path, s.header, s.additions)


def _baseline_notes(
    c: Comparison,
    conversions: int,
    train: Sequence[Observation],
    o: CalibrationOptions,
    cands: Sequence[Candidate] = (),
    target: ScoreTarget | None = None,
) -> list[str]:
    """Say plainly when the points table cannot get close to the plain logistic regression,
    and why."""
    gap = c.gap
    if gap is None or gap <= 0.02:
        return []
    why: list[str] = []
    if not o.refit_profile:
        shared = target is not None and target.named and not target.own_fit
        why.append(
            "the profile was not refit ("
            + ("shared with the lifecycle score" if shared else "--keep-profile")
            + ")"
        )
    if conversions < 200:
        why.append(f"only {conversions} conversions: too few to pin every point down")
    profile = sum(1 for x in train if any(k.startswith("fit:") for k in x.units))
    if profile < len(train) // 2:
        why.append("the profile rules hold for few contacts (grades A-D are coarse)")
    left_out = [x.key for x in cands if x.strong and not x.added][:5]
    if left_out:
        why.append("strong signals no rule of the suggested model counts: " + ", ".join(left_out))
    why.append(
        "a points table counts each rule within its caps and the profile in four grades, where "
        "a regression weighs every count freely"
    )
    return [
        f"the plain logistic regression ranks the held-out contacts at ROC AUC "
        f"{c.baseline_auc:.3f}, the suggested points table at {c.suggested.auc:.3f} "
        f"({gap:.3f} below): " + "; ".join(why)
    ]


def _adopt(
    cands: Sequence[Candidate],
    fitted: dict[str, PointChange],
    add: bool = True,
    taken: Iterable[str] = (),
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Strong candidates whose fitted points keep the sign of their lift (and are worth at
    least 2 points) become new rules, under a name no rule has yet; every candidate keeps its
    fitted points for the report."""
    out: list[Candidate] = []
    rules: list[dict[str, Any]] = []
    used = set(taken)
    for c in cands:
        ch = fitted.get(c.name)
        if ch is None or c.name in used:
            out.append(c)
            continue
        keep = add and ch.status == "refit" and abs(ch.suggested) >= 2
        used.add(c.name)
        c = dataclasses.replace(c, points=ch.suggested, added=keep)
        if keep:
            rules.append(c.rule())
        out.append(c)
    return out, rules
