"""The files that ship inside the package, found with importlib.resources.

- `DEFAULTS_DIR`: the default model, title rules, free-mail overrides and env example. In the
  repository `connector/defaults` is a symlink to the top-level `config/` (the single source of
  those files); a wheel (`pip install .`, pipx, the Docker image) carries copies of them.
- `DEMO_DATA_DIR`: the demo firmographics (`connector/demo_data` → `fixtures/`; a wheel carries
  `firmographics.csv` only: the sandboxes generate their demo portal when its file is absent).

Paths are resolved, so in a checkout they read `.../config/model.yaml` as before.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# what `leadscore init-model DIR` copies for an admin to edit
EDITABLE_FILES: tuple[str, ...] = (
    "model.yaml",
    "titles.yaml",
    "freemail.yaml",
    "target_accounts.txt",
    "leadscore.env.example",
)


def _packaged(name: str) -> Path:
    # an installed package lives on disk (pip, pipx, the image; never a zip): a plain Path
    return Path(str(files("connector").joinpath(name))).resolve()


DEFAULTS_DIR = _packaged("defaults")
DEMO_DATA_DIR = _packaged("demo_data")
DEFAULT_MODEL_PATH = DEFAULTS_DIR / "model.yaml"
DEFAULT_TITLES_PATH = DEFAULTS_DIR / "titles.yaml"


def write_editable_copies(dest: Path, *, force: bool = False) -> list[Path]:
    """Copy the shipped defaults (`EDITABLE_FILES`) into `dest` (created if need be) for an
    admin to edit; the paths written. Refuses, writing nothing, when one of them exists and
    `force` is false: FileExistsError naming every such file."""
    targets = [dest / name for name in EDITABLE_FILES]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise FileExistsError(f"{', '.join(existing)} already {verb}")
    dest.mkdir(parents=True, exist_ok=True)
    for name, target in zip(EDITABLE_FILES, targets, strict=True):
        target.write_bytes((DEFAULTS_DIR / name).read_bytes())
    return targets
