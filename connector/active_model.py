"""The model in force: one model per CRM that the state DB knows, and that every command that
scores uses.

- `leadscore rescore` (applying, not a dry run) makes the model it applies the active one: its
  version, fingerprint and normalized content (with the title rules) go to the `active_model`
  table, so the worker rebuilds exactly that model without the file.
- Every other command that scores (sync, run, backfill, dead-letter retry, webhooks) resolves
  the model in force with `model_in_force`: the active model; when a model file is configured
  explicitly (LEADSCORE_MODEL_PATH or --model) and differs from it, the command refuses before
  anything is written (roll the file out with `leadscore rescore --model PATH`). Before any
  rollout (a new state DB) the configured model becomes the active one.
- A running worker re-reads the record before each pass (`follow_active`): a rollout made by
  another process is followed, never undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from connector.errors import ConfigError
from connector.model.loader import LoadedModel
from connector.model.snapshot import model_content, model_from_content
from connector.state.store import ActiveModel, StateStore

if TYPE_CHECKING:
    from connector.pipeline import Pipeline
    from connector.settings import Settings

log = logging.getLogger(__name__)

APPLIED_BY_ROLLOUT = "rescore"
APPLIED_BY_FIRST_RUN = "first run"


class ModelNotInForceError(ConfigError):
    """The configured model file is not the model in force: a command that writes refuses."""


@dataclass(frozen=True)
class InForce:
    """The model a command scores with, and the lines to show before it writes anything."""

    model: LoadedModel
    active: ActiveModel | None
    notes: list[str] = field(default_factory=list)


def describe(version: str, fp: str) -> str:
    return f"{version} ({fp})"


def describe_active(active: ActiveModel) -> str:
    return (
        f"{describe(active.version, active.fingerprint)}, rolled out "
        f"{active.applied_at:%Y-%m-%d %H:%M} UTC from {active.source_path}"
        + (" (first run)" if active.applied_by == APPLIED_BY_FIRST_RUN else "")
    )


def configured_explicitly(settings: Settings) -> bool:
    """Whether the admin named a model file (LEADSCORE_MODEL_PATH, the env file or --model)
    rather than leaving the default."""
    return "model_path" in settings.model_fields_set


def rebuild(active: ActiveModel) -> LoadedModel:
    """The active model, rebuilt from the state DB (`ModelError` if this version cannot)."""
    try:
        return model_from_content(active.content, active.source_path)
    except ConfigError as exc:
        raise ConfigError(
            f"the model in force ({describe(active.version, active.fingerprint)}) stored in the "
            f"state DB cannot be read by this leadscore: {exc}; roll a model out again with "
            "`leadscore rescore --model PATH`"
        ) from None


def in_force_or(store: StateStore, crm: str, fallback: LoadedModel) -> LoadedModel:
    """For the commands that only read (simulate, explain): the model in force, or `fallback`
    (the configured model) before any rollout."""
    active = store.get_active_model(crm)
    return (
        fallback
        if active is None or active.fingerprint == fallback.fingerprint
        else rebuild(active)
    )


def file_of_active(active: ActiveModel) -> LoadedModel | None:
    """The file the model in force was rolled out from, when it still holds that model (for
    the commands that need a file: `calibrate` edits one)."""
    from connector.model.loader import validate_model_file

    loaded, _ = validate_model_file(active.source_path)
    return loaded if loaded is not None and loaded.fingerprint == active.fingerprint else None


def version_not_bumped(new: LoadedModel, version: str, fp: str) -> str | None:
    """A warning when `new` has the version of another model (`version`, `fp`) but other
    content: the CRM's model version would not tell the two apart."""
    if new.fingerprint == fp or new.version != version:
        return None
    return (
        f"warning: version not bumped: {new.path} is version {new.version} like the model in "
        f"force, but its content differs (fingerprint {fp} → {new.fingerprint}); the CRM's "
        "leadscore_model_version would not tell them apart: bump `version` in the file"
    )


def activate(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    *,
    applied_by: str = APPLIED_BY_ROLLOUT,
    now: datetime | None = None,
) -> ActiveModel:
    """Make `model` the model in force for `crm`. The same model (by fingerprint) keeps its
    record (when and from where it was rolled out)."""
    current = store.get_active_model(crm)
    if current is not None and current.fingerprint == model.fingerprint:
        return current
    text: str | None = None
    try:
        text = Path(model.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    record = ActiveModel(
        crm=crm,
        version=model.version,
        fingerprint=model.fingerprint,
        content=model_content(model),
        model_yaml=text,
        source_path=str(Path(model.path).resolve()) if text is not None else model.path,
        applied_at=now or datetime.now(UTC),
        applied_by=applied_by,
    )
    store.set_active_model(record)
    return record


def model_in_force(
    store: StateStore,
    crm: str,
    configured: LoadedModel,
    *,
    explicit: bool,
    record: bool = True,
    now: datetime | None = None,
) -> InForce:
    """The model a command that scores must use. `configured`: the model file of the settings;
    `explicit`: the admin named it. Raises `ModelNotInForceError` when an explicitly configured
    model is not the active one. `record`: before any rollout, make `configured` the active
    model (False for a dry run)."""
    active = store.get_active_model(crm)
    if active is None:
        if not record:
            return _with_stale_note(store, crm, InForce(configured, None))
        return _first_run(store, crm, configured, now or datetime.now(UTC))
    in_force = rebuild(active)
    if in_force.fingerprint == configured.fingerprint:
        return _with_stale_note(store, crm, InForce(configured, active))
    named = describe(configured.version, configured.fingerprint)
    head = (
        f"the configured model {configured.path} ({named}) is not the model in force "
        f"({describe_active(active)})"
    )
    if explicit:
        raise ModelNotInForceError(
            f"{head}; nothing was written. Roll it out with `leadscore rescore --model "
            f"{configured.path}`, or drop LEADSCORE_MODEL_PATH / --model to keep the model in force"
        )
    notes = [
        f"note: scoring with the model in force {describe_active(active)}; the default model "
        f"file {configured.path} ({named}) is not in force"
    ]
    bumped = version_not_bumped(configured, active.version, in_force.fingerprint)
    if bumped is not None:
        notes.append(bumped)
    return _with_stale_note(store, crm, InForce(in_force, active, notes))


def _other_models(store: StateStore, crm: str, model: LoadedModel) -> tuple[int, str] | None:
    """How many stored scores come from another model than `model`, and those models named
    with their counts (the first three); None when none does."""
    others = [(v, fp, n) for v, fp, n in store.stored_models(crm) if fp != model.fingerprint]
    if not others:
        return None
    which = ", ".join(f"{describe(v, fp)}: {n}" for v, fp, n in others[:3])
    return sum(n for _, _, n in others), which


def stale_scores_note(store: StateStore, crm: str, model: LoadedModel) -> str | None:
    """A warning when stored scores come from another model than `model` (a rollout that did
    not finish, or scores from before one)."""
    others = _other_models(store, crm, model)
    if others is None:
        return None
    total, which = others
    return (
        f"warning: {total} stored score(s) come from another model than the one in force "
        f"{describe(model.version, model.fingerprint)} ({which}); this run rescores only the "
        "contacts that change: `leadscore rescore` rescores everybody with the model in force"
    )


def _first_run(store: StateStore, crm: str, configured: LoadedModel, now: datetime) -> InForce:
    """Before any rollout, `configured` becomes the model in force. Scores stored before then
    come from dry runs (which record no model): those of another model (`sync --dry-run
    --model other.yaml` on a new state DB) are made due, so this run rescores them all with
    the model in force, and says so."""
    others = _other_models(store, crm, configured)
    active = activate(store, crm, configured, applied_by=APPLIED_BY_FIRST_RUN, now=now)
    if others is None:
        return InForce(configured, active)
    store.set_other_models_due(crm, configured.fingerprint, now)
    total, which = others
    named = describe(configured.version, configured.fingerprint)
    note = (
        f"note: {total} stored score(s) come from another model ({which}), scored before "
        f"this state DB had a model in force (a dry run): this run rescores them with the "
        f"model in force {named}"
    )
    return InForce(configured, active, [note])


def _with_stale_note(store: StateStore, crm: str, found: InForce) -> InForce:
    note = stale_scores_note(store, crm, found.model)
    return found if note is None else InForce(found.model, found.active, [*found.notes, note])


def follow_active(pipeline: Pipeline, seen: ActiveModel | None) -> Callable[[], None]:
    """A check for the start of each pass of a long-lived pipeline: when another process rolled
    out a model since `seen`, the pipeline scores with it from then on (said in the log)."""
    last = [seen]

    def check() -> None:
        active = pipeline.store.get_active_model(pipeline.crm)
        before = last[0]
        if active is None or (
            before is not None
            and (active.fingerprint, active.applied_at) == (before.fingerprint, before.applied_at)
        ):
            return
        last[0] = active
        if active.fingerprint == pipeline.model.fingerprint:
            return
        model = rebuild(active)
        if model.fingerprint == pipeline.model.fingerprint:
            return
        log.warning(
            "model in force changed to %s: scoring with it from this pass on (was %s)",
            describe_active(active),
            describe(pipeline.model.version, pipeline.model.fingerprint),
        )
        pipeline.model = model

    return check
