"""A full rescore with one score vs with three (issue 23: named scores), on the same state DB.

    cd bench && ../.venv/bin/python named_scores.py --contacts 100000 --events 20

The rescore is `connector.ops.rescore.recompute_all`, the local half of `leadscore rescore`
(every stored contact scored from its stored events, every score saved, the changed ones put
on the write backlog), in one process (`--workers`) so that the two runs share the machine
alike. "One score": the repository's default model. "Three scores": the same model with two
named scores (`scores:`), so every contact is scored three times from ONE read of its events
and two `named_scores` rows are saved per contact. `--named full` (the worst case): each named
score has the default model's whole engagement section (22 rules, as many as the lifecycle
score); `--named example` (the default): each is the services score of the shipped example
config/two_products.yaml (5 rules: a product line's score). The one-score run is
timed before and after the three-score run and averaged (this VM's speed drifts within
minutes). Prints the ratio three/one against the target (<= 2x).
The DB is generated once per size (seeded, connector.synth, as rescore_full.py) and reused.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rescore_full import CRM, MODEL, NOW, build

from connector.model.loader import LoadedModel, load_model
from connector.ops.rescore import recompute_all
from connector.scoring import BUILD
from connector.state.store import StateStore


def three_scores(folder: Path, named: str = "example") -> LoadedModel:
    """The default model with two named scores: each with the default engagement section
    (`named="full"`) or the example's services engagement (`"example"`)."""
    raw: dict[str, Any] = yaml.safe_load(MODEL.read_text())
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(MODEL.parent / name, folder / name)
    if named == "full":
        engagement = raw["engagement"]
    else:
        example = yaml.safe_load((MODEL.parent / "two_products.yaml").read_text())
        engagement = example["scores"][0]["engagement"]
    raw["lifecycle_score"] = "main"
    raw["scores"] = [
        {"name": "second", "engagement": engagement, "threshold": 60},
        {"name": "third", "engagement": engagement, "threshold": 80},
    ]
    path = folder / "three_scores.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    model = load_model(path)
    assert [n.name for n in model.named] == ["second", "third"]
    return model


def rescore(path: Path, model: LoadedModel, workers: int) -> tuple[float, int]:
    """`recompute_all` of every live contact with `model`; the backlog emptied first, so every
    run does the same work."""
    with StateStore.open(path) as store:
        with store.transaction():
            store.db.execute("DELETE FROM write_backlog")
        t0 = time.perf_counter()
        scored, _backlog = recompute_all(store, CRM, model, NOW, workers=workers)
        dt = time.perf_counter() - t0
    return dt, scored


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    ap.add_argument(
        "--named",
        choices=("example", "full"),
        default="example",
        help="the named scores' rules: the example's services score (5) or the default's (22)",
    )
    args = ap.parse_args()
    path = args.db or Path(f"/tmp/leadscore-bench-{args.contacts}x{args.events}.db")
    if not path.exists():
        build(path, args.contacts, args.events)
    one = load_model(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        three = three_scores(Path(tmp), args.named)
        rescore(path, one, args.workers)  # warm-up: page cache, compiled matchers
        one_before, n = rescore(path, one, args.workers)
        three_dt, n3 = rescore(path, three, args.workers)
        one_after, _ = rescore(path, one, args.workers)
    assert n == n3
    one_dt = (one_before + one_after) / 2
    events = n * args.events
    print(
        f"one score: {n:,} contacts, ~{events:,} events in {one_before:.1f}s / {one_after:.1f}s "
        f"(before / after the three-score run; mean {one_dt:.1f}s, {events / one_dt:,.0f} "
        f"events/s) with {args.workers} process(es)"
    )
    rules = len(three.named[0].loaded.model.engagement.rules)
    print(
        f"three scores (the lifecycle score with {len(one.model.engagement.rules)} engagement "
        f"rules and two named scores with {rules} each, --named {args.named}): "
        f"{three_dt:.1f}s ({events / three_dt:,.0f} events/s)"
    )
    print(f"scoring core: {BUILD}")
    print(f"ratio three scores / one score: {three_dt / one_dt:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
