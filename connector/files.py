"""Files the tool exports (reports, suggested models) are created owner-only, like the DB."""

from __future__ import annotations

import os
from pathlib import Path

from connector.text import display_text


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (an existing file is
    tightened to 0600 too). Lone surrogates and control characters (CRM text) are cleaned
    so the UTF-8 file can always be written."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(display_text(text))
    finally:
        if fd != -1:
            os.close(fd)
