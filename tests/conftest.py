"""Shared fixtures: a HubSpot sandbox on loopback, an adapter on the official SDK, a state DB."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connector.crm.hubspot import HubSpotAdapter
from connector.enrich.enricher import build_enricher
from connector.model.loader import LoadedModel, load_model
from connector.pipeline import Pipeline, SyncOptions
from connector.retry import RetryPolicy
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.store import StateStore

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default state DB ($XDG_STATE_HOME/leadscore/state.db) in a per-test directory, never
    the real home; subprocesses inherit it. Also drops LEADSCORE_* names the developer's shell
    may carry, so that a stray one cannot fail the settings check."""
    import os

    home = tmp_path_factory.mktemp("state-home")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    for name in list(os.environ):
        if name.upper().startswith("LEADSCORE_") and name.upper() != "LEADSCORE_COMPILE":
            monkeypatch.delenv(name)
    return home


@dataclass
class Harness:
    sb: HubSpotSandbox
    adapter: HubSpotAdapter
    store: StateStore
    pipeline: Pipeline
    clock: list[datetime]

    def writes(self) -> list[dict[str, Any]]:
        """Every batch-update input the sandbox accepted (200/207), in order."""
        out: list[dict[str, Any]] = []
        for r in self.sb.requests:
            if (
                r.path.endswith("/batch/update")
                and r.status in (200, 207)
                and isinstance(r.body, dict)
            ):
                out.extend(r.body.get("inputs", []))
        return out

    def written_ids(self) -> list[str]:
        return [str(i["id"]) for i in self.writes()]


def make_harness(
    tmp_path: Path,
    portal: Any,
    *,
    model: LoadedModel | None = None,
    options: SyncOptions | None = None,
    **sandbox_kwargs: Any,
) -> Generator[Harness, None, None]:
    kwargs: dict[str, Any] = {"now": NOW, "search_rate_limit": 10_000, "time_scale": 0.01}
    kwargs.update(sandbox_kwargs)
    with HubSpotSandbox.start(portal, **kwargs) as sb:
        adapter = HubSpotAdapter(
            SecretStr(sb.token),
            sb.url,
            search_per_second=10_000,
            timeout_s=5,
            retry=RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, seed=1),
        )
        adapter.ensure_properties()
        sb.clear_log()
        store = StateStore.open(tmp_path / "state.db")
        clock = [NOW]
        enricher = build_enricher(load_settings(), cache=store.company_cache)
        pipeline = Pipeline(
            store,
            adapter,
            model or load_model(),
            enricher=enricher,
            options=options or SyncOptions(),
            clock=lambda: clock[0],
        )
        try:
            yield Harness(sb, adapter, store, pipeline, clock)
        finally:
            adapter.close()
            store.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(tmp_path, build_demo_portal())


@pytest.fixture
def demo_accounts(tmp_path: Path) -> Iterator[Harness]:
    """The demo portal with accounts on (as `leadscore demo` runs it): the company group and
    properties created, the log cleared."""
    from connector.account_stage import AccountStage

    for h in make_harness(tmp_path, build_demo_portal()):
        h.adapter.accounts = True
        h.adapter.ensure_properties()  # the company group and properties too
        h.sb.clear_log()
        h.pipeline.accounts = AccountStage(h.pipeline)
        yield h


@pytest.fixture
def no_log_handler() -> Iterator[None]:
    """`run` and `backfill` install a log handler on the stream of the moment (a CliRunner's,
    capsys'): take it off after the test, or a later test logs into a closed stream."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "leadscore":
            root.removeHandler(handler)
            handler.close()


@pytest.fixture
def harness_factory(tmp_path: Path) -> Callable[..., Any]:
    def factory(portal: Any, **kwargs: Any) -> Iterator[Harness]:
        return make_harness(tmp_path, portal, **kwargs)

    return factory


@pytest.fixture(autouse=True)
def _wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands' piped output is as wide as COLUMNS (else 100): tests that read phrases out of
    tables get a wide one, so a phrase is not cut across cell lines. The width itself is tested
    in tests/test_console.py and tests/test_demo.py, which set COLUMNS themselves."""
    monkeypatch.setenv("COLUMNS", "200")


def shipped_model_variant(
    tmp_path: Path, version: str, edit: Callable[[dict[str, Any]], None]
) -> Path:
    """The shipped model file as `version`, changed by `edit` (its parsed YAML), written in a
    folder of its own beside copies of the shipped title rules and target-account list."""
    import shutil

    import yaml

    src = Path(load_model().path)
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(src.parent / name, folder / name)
    doc = yaml.safe_load(src.read_text())
    doc["version"] = version
    edit(doc)
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
