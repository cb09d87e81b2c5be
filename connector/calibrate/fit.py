"""Refit point values from outcomes: an L2-regularised logistic regression on rule firings.

The model stays a points table. Each feature (an engagement rule, or one tier of a tiered rule)
gets a weight in log-odds per unit (see `observe`: a unit is one counted event, or one firing of
a frequency rule); the suggested points are those weights times one common scale, rounded:

1. Features that fired on fewer than `min_rule_fires` training contacts (or on all of them) are
   not refit: they keep the team's points ("never fires" / "too rare").
2. Signs are constrained to the team's: a feature whose weight comes out against its sign is held
   at the smallest value with the team's sign (±1) and the others are refit without it, until no
   weight disagrees. What the data would have said is kept in `data_suggests` and reported.
   Only with `allow_sign_flips`, and only when the lift interval on the training contacts
   excludes 1 on the wrong side ("strongly"), may a sign flip; every flip is reported.
3. The scale (points per log-odds unit) is chosen so that the *current threshold* yields the
   requested MQL rate on the training contacts (hand-raisers and grade gates included), so the
   threshold keeps the meaning sales knows and the model's caps keep their scale; the threshold
   is then fine-tuned on the engine's own replayed scores (see `tune_threshold`).

scikit-learn and numpy are imported lazily: `require_sklearn()` raises a `ConfigError` naming the
`calibrate` extra when they are missing.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from connector.calibrate.observe import Feature, Observation
from connector.calibrate.stats import lift_interval, num
from connector.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

INSTALL_HINT = (
    "`leadscore calibrate` needs scikit-learn and numpy, which are not installed; "
    "install the extra: pip install 'leadscore[calibrate]'"
)

Status = Literal[
    "refit",
    "kept: never fires",
    "kept: too rare",
    "kept: fires on all",
    "sign kept",
    "sign flipped",
    "new sign",
    "kept: profile not refit",
]


def require_sklearn() -> None:
    """Fail early, with the install hint, when the `calibrate` extra is missing."""
    try:
        import numpy
        import sklearn.linear_model
        import sklearn.metrics

        del numpy, sklearn  # only their presence matters here
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc


@dataclass(frozen=True, slots=True)
class PointChange:
    """One row of the suggested points table."""

    feature: str
    rule: str
    tier: str | None
    description: str
    current: int
    suggested: int
    status: Status
    weight: float | None = None  # log-odds per unit; None when not refit
    fires: int = 0  # training contacts on which it fired
    data_suggests: int | None = None  # the unconstrained value when the sign was held/flipped
    note: str = ""
    section: str = "engagement"  # "fit": a profile rule's points

    @property
    def odds_ratio(self) -> float | None:
        return None if self.weight is None else math.exp(self.weight)

    @property
    def changed(self) -> bool:
        return self.suggested != self.current


@dataclass(frozen=True, slots=True)
class PointsFit:
    changes: list[PointChange]
    scale: float  # points per log-odds unit
    intercept: float
    train_rate_estimate: float  # the linear estimate of the MQL rate at the current threshold


def _matrix(features: Sequence[Feature], obs: Sequence[Observation]) -> NDArray[np.float64]:
    import numpy as np

    x = np.zeros((len(obs), len(features)), dtype=np.float64)
    for i, o in enumerate(obs):
        for j, f in enumerate(features):
            x[i, j] = o.units.get(f.name, 0.0)
    return x


def _logistic(
    x: NDArray[np.float64], y: NDArray[np.int_], c: float
) -> tuple[NDArray[np.float64], float]:
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if x.shape[1] == 0:
        p = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        return np.zeros(0), math.log(p / (1 - p))
    clf = LogisticRegression(C=c, max_iter=5000)  # L2 (the default penalty), lbfgs
    with warnings.catch_warnings():
        # a fit that has not fully converged after 5000 iterations is still a usable ranking;
        # only that warning is silenced, for this call only.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return np.asarray(clf.coef_[0], dtype=np.float64), float(clf.intercept_[0])


def _sign(v: float) -> int:
    return 1 if v > 0 else -1 if v < 0 else 0


def refit_points(
    features: Sequence[Feature],
    train: Sequence[Observation],
    *,
    threshold: float,
    target_rate: float,
    c: float = 1.0,
    min_fires: int = 10,
    allow_sign_flips: bool = False,
) -> PointsFit:
    import numpy as np

    x_all = _matrix(features, train)
    y = np.array([1 if o.converted else 0 for o in train], dtype=np.int_)
    n = len(train)
    fires = (x_all > 0).sum(axis=0)
    direction = [_sign(f.points) for f in features]

    eligible: list[int] = []
    kept_status: dict[int, Status] = {}
    for j, _f in enumerate(features):
        if fires[j] == 0:
            kept_status[j] = "kept: never fires"
        elif fires[j] < min_fires:
            kept_status[j] = "kept: too rare"
        elif fires[j] >= n:
            kept_status[j] = "kept: fires on all"
        else:
            eligible.append(j)

    free: set[int] = set()
    strong_wrong: set[int] = set()
    for j in eligible:
        fired = x_all[:, j] > 0
        a, n1 = int(y[fired].sum()), int(fired.sum())
        cc, n0 = int(y[~fired].sum()), int((~fired).sum())
        li = lift_interval(a, n1, cc, n0)
        d = direction[j]
        if li is not None and ((d > 0 and li.high < 1) or (d < 0 and li.low > 1)):
            strong_wrong.add(j)
        if d == 0 or (allow_sign_flips and j in strong_wrong):
            free.add(j)

    # the unconstrained fit: what the data says on its own
    coef_free, _ = _logistic(x_all[:, eligible], y, c)
    unconstrained = {j: float(coef_free[k]) for k, j in enumerate(eligible)}

    active = list(eligible)
    held: set[int] = set()
    coef, intercept = coef_free, 0.0
    for _ in range(len(eligible) + 1):
        coef, intercept = _logistic(x_all[:, active], y, c)
        bad = [j for k, j in enumerate(active) if j not in free and direction[j] * coef[k] < 0]
        if not bad:
            break
        held.update(bad)
        active = [j for j in active if j not in held]
    weights = dict.fromkeys(eligible, 0.0)
    weights.update({j: float(coef[k]) for k, j in enumerate(active)})

    # contributions that do not scale: kept points and held (±1) features
    base = np.zeros(n)
    for j, _f in enumerate(features):
        if j in kept_status:
            base += features[j].points * x_all[:, j]
        elif j in held:
            base += direction[j] * x_all[:, j]
    lin = np.zeros(n)
    for j in active:
        lin += weights[j] * x_all[:, j]
    hand = np.array([o.hand_raiser for o in train], dtype=bool)
    ok = np.array([any(t[1] for t in o.trail) for o in train], dtype=bool)

    def rate(k: float) -> float:
        s = k * lin + base
        return float(np.mean(hand | (ok & (s >= threshold))))

    positive = lin[lin > 0]
    if positive.size:
        q = float(np.quantile(positive, max(0.0, min(1.0, 1 - target_rate))))
        k0 = threshold / max(q, 1e-9) if threshold > 0 else 100.0 / max(q, 1e-9)
        grid = k0 * np.power(2.0, np.linspace(-6, 6, 241))
        errors = np.array([abs(rate(float(k)) - target_rate) for k in grid])
        best = grid[errors <= errors.min() + 1e-12]
        scale = float(np.exp(np.mean(np.log(best))))
    else:
        scale = 10.0  # nothing predicts a conversion: points stay near zero
    changes: list[PointChange] = []
    for j, f in enumerate(features):
        if j in kept_status:
            changes.append(
                PointChange(
                    f.name,
                    f.rule,
                    f.tier,
                    f.description,
                    f.points,
                    f.points,
                    kept_status[j],
                    None,
                    int(fires[j]),
                    note=_kept_note(kept_status[j], int(fires[j]), min_fires),
                )
            )
            continue
        w = weights[j]
        d = direction[j]
        raw = round(scale * w)
        suggests = round(scale * unconstrained[j])
        if j in held:
            pts = d
            status: Status = "sign kept"
            note = f"the data points the other way (would be {suggests:+d}); held at {pts:+d}" + (
                "; strongly: see sign flips" if j in strong_wrong else ""
            )
            changes.append(
                PointChange(
                    f.name,
                    f.rule,
                    f.tier,
                    f.description,
                    f.points,
                    pts,
                    status,
                    w,
                    int(fires[j]),
                    suggests,
                    note,
                )
            )
            continue
        if d != 0 and _sign(raw) != d and (j not in free or raw == 0):
            raw = d  # a weight too small to round to a point: the smallest with the team's sign
            note = "≈ no effect: kept at the smallest value with its sign"
        else:
            note = ""
        if d == 0:
            status = "new sign" if raw != 0 else "refit"
        elif _sign(raw) != d:
            status = "sign flipped"
        else:
            status = "refit"
        if status == "sign flipped":
            note = f"sign flipped from {f.points:+d}: the data strongly says the other way"
        changes.append(
            PointChange(
                f.name,
                f.rule,
                f.tier,
                f.description,
                f.points,
                int(raw),
                status,
                w,
                int(fires[j]),
                suggests if status == "sign flipped" else None,
                note,
            )
        )
    changes = [
        dataclasses.replace(c, section=f.section) if f.section != "engagement" else c
        for c, f in zip(changes, features, strict=True)
    ]
    return PointsFit(changes, scale, intercept, rate(scale))


def baseline_auc(
    features: Sequence[Feature],
    train: Sequence[Observation],
    test: Sequence[Observation],
    c: float = 1.0,
) -> float | None:
    """Held-out ROC AUC of a plain L2 logistic regression on the same features (every rule's
    units, profile rules and forced grades as 0/1), no signs, caps or rounding: the bar a
    points table can be held to."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    x_tr, x_te = _matrix(features, train), _matrix(features, test)
    y_tr = np.array([1 if o.converted else 0 for o in train], dtype=np.int_)
    y_te = np.array([1 if o.converted else 0 for o in test], dtype=np.int_)
    if not (0 < y_tr.sum() < len(y_tr)) or not (0 < y_te.sum() < len(y_te)):
        return None
    used = (x_tr > 0).any(axis=0)
    coef, _ = _logistic(x_tr[:, used], y_tr, c)
    return float(roc_auc_score(y_te, x_te[:, used] @ coef))


def _kept_note(status: Status, fires: int, min_fires: int) -> str:
    if status == "kept: never fires":
        return "never fired on a training contact: keeps its points"
    if status == "kept: too rare":
        return f"fired on {fires} training contact(s), fewer than {min_fires}: keeps its points"
    return "fired on every training contact: nothing to learn, keeps its points"


def tune_threshold(
    obs: Sequence[Observation], current: float, target_rate: float, tolerance: float
) -> tuple[float, float]:
    """(threshold, MQL rate on `obs`): the current threshold when its rate is within `tolerance`
    of the target, else the replayed score whose rate is closest (ties: closest to current).

    Same rule as `Observation.mql_at`, in O(n log n): a contact is an MQL at threshold t when it
    raised its hand, or when its best score at an allowed grade is >= t."""
    if not obs:
        return current, 0.0
    always = 0
    peaks: list[float] = []
    for o in obs:
        if any(hr for _, _, hr in o.trail):
            always += 1
        else:
            peaks.append(max((sc for sc, ok, _ in o.trail if ok), default=-math.inf))
    peaks.sort()
    n = len(obs)

    def rate(t: float) -> float:
        return (always + len(peaks) - bisect.bisect_left(peaks, t)) / n

    r_now = rate(current)
    if abs(r_now - target_rate) <= tolerance:
        return current, r_now
    candidates = {current} | {p for p in peaks if p > 0}
    best = min(candidates, key=lambda t: (abs(rate(t) - target_rate), abs(t - current)))
    return best, rate(best)


@dataclass(frozen=True, slots=True)
class Band:
    label: str
    low: float | None
    high: float | None
    contacts: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.contacts if self.contacts else None


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    """How one model ranks and flags held-out contacts."""

    version: str
    threshold: float
    contacts: int
    converted: int
    auc: float | None
    precision: float
    recall: float
    mql: int
    bands: tuple[Band, ...]

    @property
    def mql_rate(self) -> float:
        return self.mql / self.contacts if self.contacts else 0.0


BAND_EDGES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)  # fractions of the threshold


def score_bands(obs: Sequence[Observation], threshold: float) -> tuple[Band, ...]:
    """Conversion by peak score band, in fractions of the model's threshold:
    below 0, 0 to half the threshold, half to the threshold, threshold to twice, twice and up."""
    edges = [e * threshold for e in BAND_EDGES]
    spans: list[tuple[float | None, float | None]] = [(None, edges[0])]
    spans += [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    spans.append((edges[-1], None))
    out: list[Band] = []
    for lo, hi in spans:
        inside = [
            o
            for o in obs
            if (lo is None or o.peak_score >= lo) and (hi is None or o.peak_score < hi)
        ]
        out.append(Band(_band_label(lo, hi), lo, hi, len(inside), sum(o.converted for o in inside)))
    return tuple(out)


def _fmt(v: float) -> str:
    return num(v)


def _band_label(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return f"< {_fmt(hi or 0)}"
    if hi is None:
        return f"≥ {_fmt(lo)}"
    return f"{_fmt(lo)}–<{_fmt(hi)}"


def metrics(version: str, obs: Sequence[Observation], threshold: float) -> ModelMetrics:
    """ROC AUC of the peak score, precision/recall of "would have been an MQL", score bands."""
    import numpy as np
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    y = np.array([1 if o.converted else 0 for o in obs], dtype=np.int_)
    scores = np.array([o.peak_score for o in obs], dtype=np.float64)
    flagged = np.array([1 if o.mql_at(threshold) else 0 for o in obs], dtype=np.int_)
    auc = float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else None
    return ModelMetrics(
        version=version,
        threshold=threshold,
        contacts=len(obs),
        converted=int(y.sum()),
        auc=auc,
        precision=float(precision_score(y, flagged, zero_division=0.0)),
        recall=float(recall_score(y, flagged, zero_division=0.0)),
        mql=int(flagged.sum()),
        bands=score_bands(obs, threshold),
    )
