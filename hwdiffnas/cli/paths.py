"""Checks on output paths, made before a long job writes to them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hwdiffnas.errors import UserError


def check_output_file(path: Path | str, what: str = "output") -> Path:
    """Make sure ``path`` can be written (creating its folder), so a long job does not fail at its end."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(probe)
    return path
