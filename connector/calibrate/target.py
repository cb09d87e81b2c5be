"""Which score `calibrate` learns: the lifecycle score (the model file's top-level `fit`,
`engagement` and `lifecycle.mql.threshold`) or one named score (an entry of `scores:`).

A named score is calibrated exactly as the lifecycle score is, on the model the sync scores it
with (`LoadedModel.named_score(name).loaded`: its own engagement rules, window and decay, its own
`fit` or the shared one, its `threshold` as the bar), from the **same outcomes** (the lifecycle
model's SQL signals and lead statuses; a contact's first scored engagement is its first event
of a type the named score's rules listen to). What changes is where the numbers go: every edit
of the suggested model lands in that score's entry (`scores[i].engagement...`,
`scores[i].threshold`, `scores[i].fit...` when the score has a `fit:` of its own). A shared fit
section is never refit for a named score (that would move the lifecycle score too): its profile
points and grades are kept, and the result says so. Only `version` changes outside the entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.calibrate.outcomes import SignalTypes
from connector.calibrate.suggest import Additions, PathKey
from connector.model.loader import LoadedModel

_FILE_KEYS = frozenset({("version",), ("title_rules",)})
_THRESHOLD: PathKey = ("lifecycle", "mql", "threshold")


@dataclass(frozen=True, slots=True)
class ScoreTarget:
    name: str
    index: int | None = None  # its position under `scores:`; None: the lifecycle score
    own_fit: bool = False  # the named score has a `fit:` of its own
    own_threshold: bool = False  # and a `threshold:` (else the lifecycle's stands in)

    @property
    def named(self) -> bool:
        return self.index is not None

    def view(self, whole: LoadedModel) -> LoadedModel:
        """The model this score is computed with, out of the whole model file."""
        if self.index is None:
            return whole
        found = whole.named_score(self.name)
        if found is None:  # pragma: no cover - the suggested file keeps every score
            raise ValueError(f"the model {whole.path} has no score {self.name!r}")
        return found.loaded

    def signal_types(self, whole: LoadedModel) -> SignalTypes:
        if self.index is None:
            return SignalTypes.of(whole.model)
        return SignalTypes.for_score(whole.model, self.view(whole).model)

    def scope(
        self, edits: dict[PathKey, object], additions: Additions
    ) -> tuple[dict[PathKey, object], Additions]:
        """The edits and additions of the score's own model as edits of the model file."""
        if self.index is None:
            return edits, additions
        entry: PathKey = ("scores", self.index)
        out: dict[PathKey, object] = {}
        adds: Additions = {(*entry, *path): items for path, items in additions.items()}
        for path, value in edits.items():
            if path in _FILE_KEYS:
                out[path] = value
            elif path == _THRESHOLD and self.own_threshold:
                out[(*entry, "threshold")] = value
            elif path == _THRESHOLD:  # the entry gains a threshold of its own
                adds.setdefault(entry, []).append(("threshold", value))
            elif path[0] == "engagement" or (path[0] == "fit" and self.own_fit):
                out[(*entry, *path)] = value
            else:  # pragma: no cover - the shared fit is never refit for a named score
                raise ValueError(f"calibrating {self.name} would edit {path} outside its entry")
        return out, adds


def score_target(model: LoadedModel, name: str | None) -> ScoreTarget:
    """The score `--score NAME` names (None or the lifecycle score's name: the lifecycle)."""
    if name is None or name == model.lifecycle_name:
        return ScoreTarget(model.lifecycle_name)
    for i, s in enumerate(model.model.scores):
        if s.name == name:
            return ScoreTarget(name, i, s.fit is not None, s.threshold is not None)
    known = ", ".join(model.score_names())
    raise ValueError(f"the model has no score {name!r}; its scores: {known}")
