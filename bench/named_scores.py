"""A full rescore with one score vs with three (issue 23: named scores), on the same state DB.

    cd bench && ../.venv/bin/python named_scores.py --contacts 100000 --events 20

The rescore is `connector.ops.rescore.recompute_all`, the local half of `leadscore rescore`
(every stored contact scored from its stored events, every score saved, the changed ones put
on the write backlog), in one process (`--workers`) so that the two runs share the machine
alike. "One score": the repository's default model. "Three scores": the same model with two
named scores (`scores:`), so every contact is scored three times from ONE read of its events
(walked once for the three: `score_rows_many`) and two `named_scores` rows are saved per
contact. `--named full` (the worst case): each named
score has the default model's whole engagement section (22 rules, as many as the lifecycle
score); `--named example` (the default): each is the services score of the shipped example
config/two_products.yaml (5 rules: a product line's score). Both models are run once first
(page cache, compiled matchers and memos of both; `--cold`: no warm-up, each run in a new
process as `leadscore rescore` runs), then each three-score run is timed between two
one-score runs, whose mean it is compared with (this VM's speed drifts within minutes);
`--rounds N`: N three-score runs so (one, three, one, three, ..., one). Prints wall and CPU
seconds (this process and its workers) and the ratio three/one against the target (<= 2x).
The DB is generated once per size (seeded, connector.synth, as rescore_full.py) and reused.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
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


def rescore(path: Path, model: LoadedModel, workers: int) -> tuple[float, float, int]:
    """`recompute_all` of every live contact with `model`, as (wall seconds, CPU seconds of
    this process and its finished children, contacts); the backlog emptied first, so every
    run does the same work."""
    with StateStore.open(path) as store:
        with store.transaction():
            store.db.execute("DELETE FROM write_backlog")
        t0, c0 = time.perf_counter(), _cpu()
        scored, _backlog = recompute_all(store, CRM, model, NOW, workers=workers)
        dt, cpu = time.perf_counter() - t0, _cpu() - c0
    return dt, cpu, scored


def rescore_file(path: Path, model_path: Path, workers: int) -> tuple[float, float, int]:
    """`rescore` with the model in a file (run in a new process by `--cold`)."""
    return rescore(path, load_model(model_path), workers)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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
    ap.add_argument("--rounds", type=int, default=1, help="three-score runs (default: 1)")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="every run in a new process, as `leadscore rescore` runs (no warm-up)",
    )
    args = ap.parse_args()
    path = args.db or Path(f"/tmp/leadscore-bench-{args.contacts}x{args.events}.db")
    if not path.exists():
        build(path, args.contacts, args.events)
    one = load_model(MODEL)
    ratios: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        three = three_scores(Path(tmp), args.named)

        def run(model: LoadedModel) -> tuple[float, float, int]:
            if not args.cold:
                return rescore(path, model, args.workers)
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                return pool.submit(rescore_file, path, Path(model.path), args.workers).result()

        if not args.cold:
            run(one)  # warm-up: page cache, compiled matchers and memos (of both models)
            run(three)
        before = run(one)
        for _ in range(args.rounds):
            three_run = run(three)
            after = run(one)
            assert before[2] == three_run[2] == after[2]
            ratios.append(report(args, one, three, before, three_run, after))
            before = after
    if len(ratios) > 1:
        walls = sorted(w for w, _ in ratios)
        cpus = sorted(c for _, c in ratios)
        print(
            f"{len(ratios)} rounds: ratio (wall) {walls[0]:.2f}-{walls[-1]:.2f}, median "
            f"{statistics.median(walls):.2f}; ratio (CPU) {cpus[0]:.2f}-{cpus[-1]:.2f}, median "
            f"{statistics.median(cpus):.2f} (target <= 2.0)"
        )
    print(f"scoring core: {BUILD}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def report(
    args: argparse.Namespace,
    one: LoadedModel,
    three: LoadedModel,
    before: tuple[float, float, int],
    three_run: tuple[float, float, int],
    after: tuple[float, float, int],
) -> tuple[float, float]:
    """Print one round (the one-score runs before and after the three-score run, averaged);
    returns its ratios (wall, CPU)."""
    n = before[2]
    one_dt, one_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    events = n * args.events
    print(
        f"one score: {n:,} contacts, ~{events:,} events in {before[0]:.1f}s / {after[0]:.1f}s "
        f"(before / after the three-score run; mean {one_dt:.1f}s, {events / one_dt:,.0f} "
        f"events/s; CPU {before[1]:.1f}s / {after[1]:.1f}s) with {args.workers} process(es)"
    )
    rules = len(three.named[0].loaded.model.engagement.rules)
    print(
        f"three scores (the lifecycle score with {len(one.model.engagement.rules)} engagement "
        f"rules and two named scores with {rules} each, --named {args.named}): "
        f"{three_run[0]:.1f}s ({events / three_run[0]:,.0f} events/s; CPU {three_run[1]:.1f}s)"
    )
    wall, cpu = three_run[0] / one_dt, three_run[1] / one_cpu
    print(f"ratio three scores / one score: {wall:.2f} (CPU {cpu:.2f}; target <= 2.0)")
    return wall, cpu


if __name__ == "__main__":
    main()
