"""A wheel (`pip install .`, pipx, the Docker image) runs on its own: the default model, title
rules, free-mail overrides, env example and demo firmographics ship inside the package, and
`leadscore init-model DIR` writes editable copies of them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.resources import DEFAULTS_DIR, DEMO_DATA_DIR, EDITABLE_FILES

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_checkout_reads_the_defaults_from_config_through_the_package_links() -> None:
    # connector/defaults and connector/demo_data are symlinks: config/ stays the one source
    assert os.readlink(ROOT / "connector" / "defaults") == "../config"
    assert os.readlink(ROOT / "connector" / "demo_data") == "../fixtures"
    assert DEFAULTS_DIR == ROOT / "config"
    assert DEMO_DATA_DIR == ROOT / "fixtures"


def test_a_wheel_installed_in_a_fresh_venv_runs_validate_model_init_model_and_demo(
    tmp_path: Path,
) -> None:
    # the build context of the Dockerfile's build stage: the package (its links kept as links),
    # config/ and the firmographics they point to
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "connector", src / "connector", symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),
    )  # fmt: skip
    shutil.copytree(ROOT / "config", src / "config")
    (src / "fixtures").mkdir()
    shutil.copy(ROOT / "fixtures" / "firmographics.csv", src / "fixtures")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSCORE_", "PYTHON"))}
    wheels = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), "."],
        src, env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("leadscore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in EDITABLE_FILES:
        assert f"connector/defaults/{name}" in names, name
    assert "connector/demo_data/firmographics.csv" in names
    assert not any(n.endswith("hubspot_demo_portal.json") for n in names)  # generated instead

    # a fresh venv with only the wheel in it; the dependencies come from this venv on
    # PYTHONPATH (no network), and the package only from the wheel
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    inst = _run(
        [sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        tmp_path, env,
    )  # fmt: skip
    assert inst.returncode == 0, inst.stderr[-3000:]
    paths = sysconfig.get_paths()
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    work = tmp_path / "elsewhere"  # outside the repository: no config/, no fixtures/
    work.mkdir()
    leadscore = str(venv / "bin" / "leadscore")

    where = _run([py, "-c", "import connector; print(connector.__file__)"], work, env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    ok = _run([leadscore, "validate-model"], work, env)
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"OK 2026\.12-default [0-9a-f]{12}\n", ok.stdout), ok.stdout

    init = _run([leadscore, "init-model", "mine"], work, env)
    assert init.returncode == 0, init.stderr
    assert [ln for ln in init.stdout.splitlines() if ln.startswith("wrote ")] == [
        f"wrote mine/{name}" for name in EDITABLE_FILES
    ]
    assert "leadscore validate-model mine/model.yaml" in init.stdout
    assert "leadscore rescore --dry-run --model mine/model.yaml" in init.stdout
    for name in EDITABLE_FILES:
        assert (work / "mine" / name).read_bytes() == (ROOT / "config" / name).read_bytes()
    copied = _run([leadscore, "validate-model", "mine/model.yaml"], work, env)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout == ok.stdout  # the same model, the same fingerprint

    demo = _run([leadscore, "demo"], work, env)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "no firmographics file" not in demo.stderr
    rows = {ln.split()[0]: ln for ln in demo.stdout.splitlines() if "@" in ln.split(" ", 1)[0]}
    # Dana's grade A needs her company's size from the shipped firmographics
    assert rows["dana.whitfield@acme-analytics.com"].split()[1:5] == ["A1", "110", "MQL", "MQL:"]
    assert "MQL: threshold;" in rows["dana.whitfield@acme-analytics.com"]
    assert rows["riley.chen1987@gmail.com"].split()[1:4] == ["D1", "100", "MQL"]
    assert "second sync: 0 write(s), 54 contact(s) unchanged" in demo.stdout


def test_init_model_writes_editable_copies_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    dest = tmp_path / "model"
    first = runner.invoke(cli, ["init-model", str(dest)])
    assert first.exit_code == 0, first.output
    n_files = len(EDITABLE_FILES)
    assert first.output.splitlines()[:n_files] == [f"wrote {dest / n}" for n in EDITABLE_FILES]
    assert f"LEADSCORE_MODEL_PATH={dest / 'model.yaml'}" in first.output
    assert sorted(p.name for p in dest.iterdir()) == sorted(EDITABLE_FILES)

    (dest / "model.yaml").write_text("version: mine\n", encoding="utf-8")
    (dest / "titles.yaml").unlink()
    again = runner.invoke(cli, ["init-model", str(dest)])
    assert again.exit_code == 1
    assert again.output == (
        f"error: {dest / 'model.yaml'}, {dest / 'freemail.yaml'}, "
        f"{dest / 'target_accounts.txt'}, {dest / 'leadscore.env.example'} already exist; "
        "nothing written (--force overwrites)\n"
    )
    assert not (dest / "titles.yaml").exists()
    assert (dest / "model.yaml").read_text(encoding="utf-8") == "version: mine\n"

    forced = runner.invoke(cli, ["init-model", "--force", str(dest)])
    assert forced.exit_code == 0, forced.output
    assert (dest / "model.yaml").read_bytes() == (ROOT / "config" / "model.yaml").read_bytes()


def test_freemail_path_points_the_enricher_at_an_edited_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.enrich.enricher import build_enricher
    from connector.settings import load_settings

    edited = tmp_path / "freemail.yaml"
    edited.write_text("free_add: [acme-analytics.com]\n", encoding="utf-8")
    default = build_enricher(load_settings(firmographics_path=None))
    assert default.parse("dana@acme-analytics.com").kind == "corporate"
    monkeypatch.setenv("LEADSCORE_FREEMAIL_PATH", str(edited))
    mine = build_enricher(load_settings(firmographics_path=None))
    assert mine.parse("dana@acme-analytics.com").kind == "free"
    assert mine.lists.overrides_path == str(edited.resolve())
    # and the offline enrichment `calibrate` uses
    from datetime import UTC, datetime

    from connector.enrich.enricher import offline_enrich_fn

    now = datetime(2026, 12, 1, tzinfo=UTC)
    offline = offline_enrich_fn(None, load_settings().freemail_path)
    assert offline(["dana@acme-analytics.com"], now)["dana@acme-analytics.com"].email_kind == "free"
    shipped = offline_enrich_fn(None)(["dana@acme-analytics.com"], now)
    assert shipped["dana@acme-analytics.com"].email_kind == "corporate"
