"""The Docker image's build: the modules `setup.py` compiles with mypyc (`LEADSCORE_COMPILE=1`),
built into a wheel with the Dockerfile's own command, and the tests of those modules run on
the compiled code. (No Docker engine here: the same command, run on this machine.)"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BUILD = "LEADSCORE_COMPILE=1 python -m pip wheel --no-build-isolation --no-deps -w /wheels ."
# the tests of the compiled modules: scoring (accounts too: their roll-up in 2 processes),
# the state DB, a full rescore in 2 processes, and a sync end to end against the HubSpot sandbox
ON_COMPILED = [
    "tests/test_scoring.py",
    "tests/test_scoring_properties.py",
    "tests/test_scoring_fused.py",
    "tests/test_accounts_scoring.py",
    "tests/test_account_rollup.py",
    "tests/test_state.py",
    "tests/test_parallel_rescore.py",
    "tests/test_ops_rescore.py",
    "tests/test_pipeline_plan.py",
    "tests/test_sync_hubspot.py",
    "tests/test_types.py",  # `AccountMember` and `Reason`, native classes of the compiled build
]


def _compiled_modules() -> list[str]:
    """`COMPILED` from setup.py (read, not run: running it builds)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(v) for v in value]
    raise AssertionError("setup.py has no COMPILED list")


def _build_stage_command() -> str:
    """The Dockerfile's RUN that installs the build tools and builds the wheel, on one line."""
    lines = DOCKERFILE.replace("\\\n", " ").splitlines()
    (run,) = [ln for ln in lines if ln.startswith("RUN ") and "LEADSCORE_COMPILE=1" in ln]
    return " ".join(run.removeprefix("RUN ").split())


def test_the_dockerfile_builds_the_wheel_with_the_command_tested_here() -> None:
    assert BUILD in _build_stage_command()
    assert "COPY --from=build /wheels" in DOCKERFILE


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.so", "build"))


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run `argv`; its output, after checking that it exited 0."""
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return proc.stdout


def _python(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    return _run([sys.executable, *args], cwd, env, timeout)


def test_the_compiled_build_passes_the_tests_of_what_it_compiles(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _copy_tree(ROOT / "connector", src / "connector")
    wheels = tmp_path / "wheels"
    # the build stage's own command, in a fresh venv (like the image's clean Python): it must
    # install whatever mypyc needs to type-check the modules it compiles
    venv = tmp_path / "venv"
    _python(["-m", "venv", str(venv)], tmp_path, dict(os.environ), 120)
    command = _build_stage_command()
    for was, now in (
        ("pip install", f"{venv}/bin/pip install"),
        ("python -m pip wheel", f"{venv}/bin/python -m pip wheel"),
        ("-w /wheels", f"-w {wheels}"),
    ):
        assert was in command, was
        command = command.replace(was, now)
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    _run(["bash", "-c", command], src, clean_env, 900)
    (wheel,) = wheels.glob("leadscore-*.whl")

    # every module setup.py names is in the wheel as an extension
    names = zipfile.ZipFile(wheel).namelist()
    extensions = [n for n in names if n.endswith(".so")]
    for module in _compiled_modules():
        stem = module.removesuffix(".py")
        assert any(n.startswith(stem + ".cpython-") for n in extensions), module

    # the repository with the wheel's extensions beside the sources (an extension module is
    # imported before a .py of the same name), and the tests of those modules run on it
    run = tmp_path / "run"
    for name in ("connector", "tests", "config", "fixtures"):
        _copy_tree(ROOT / name, run / name)
    shutil.copy(ROOT / "pyproject.toml", run / "pyproject.toml")
    with zipfile.ZipFile(wheel) as zf:
        for n in extensions:
            zf.extract(n, run)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("LEADSCORE_COMPILE", None)
    modules = [m.removesuffix(".py").replace("/", ".") for m in _compiled_modules()]
    show = (
        "import importlib, sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).__file__)"
    )
    loaded = _python(["-c", show, *modules], run, env, 60).split()
    assert len(loaded) == len(modules)
    assert all(f.startswith(str(run)) and f.endswith(".so") for f in loaded), loaded
    version = _python(["-c", "from connector.cli import cli; cli(['--version'])"], run, env, 60)
    assert version.strip().endswith("(scoring core: compiled by mypyc)"), version
    _python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ON_COMPILED], run, env, 1200)
