"""Where the benchmark store lives: ``--data-dir``, then ``$HWDIFFNAS_DATA``, then a per-user folder.

The per-user folder is ``$XDG_DATA_HOME/hwdiffnas`` (or ``~/.local/share/hwdiffnas``). Source folders that
data is imported *from* are never written to; the store is a single SQLite file inside the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwdiffnas.errors import UserError

ENV_DATA = "HWDIFFNAS_DATA"
STORE_FILENAME = "hwdiffnas.sqlite"
IMPORT_HINT = "hwdiffnas data import ../shared/data/nb201"


def default_data_dir() -> Path:
    """The per-user data directory (XDG base-directory rules)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "hwdiffnas"


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data directory to use: the argument, else ``$HWDIFFNAS_DATA``, else the per-user default."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def store_path(data_dir: Path | str | None = None) -> Path:
    """Path of the SQLite store inside the resolved data directory."""
    return resolve_data_dir(data_dir) / STORE_FILENAME


def ensure_writable_dir(path: Path, sources: list[Path] | tuple[Path, ...] = ()) -> None:
    """Create the data directory; refuse when it lies inside one of the read-only source folders (or is the
    folder of a source file)."""
    target = path.expanduser().resolve()
    for src in sources:
        root = src.resolve()
        if root.is_dir():
            inside = target == root or root in target.parents
        else:
            inside = target == root.parent
        if inside:
            raise UserError(
                f"data directory {path} lies inside the source folder {src}, which is read-only input; "
                "choose another with --data-dir or $HWDIFFNAS_DATA"
            )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create data directory {path}: {exc.strerror}") from exc
