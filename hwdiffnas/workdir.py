"""Private scratch folders under a shared parent (``<data dir>/campaign-tmp``) that a stopped run cannot leak.

Each run works in a folder of its own holding a locked ``.lock`` file. The lock dies with its process (also on
SIGKILL), so a later run can tell folders of stopped runs from folders in use, and removes the former (and the
scratch folders that older versions left directly in the parent) before it starts.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hwdiffnas.errors import UserError

LOCK_NAME = ".lock"
RUN_PREFIX = "run-"
LEGACY_PREFIXES = ("hwdiffnas-profile-", "tmp")  # scratch folders written straight into the parent before
UNLOCKED_GRACE_S = 60.0  # a run folder without its lock file is left alone this long (it may be being created)


def _try_lock(fh: IO[Any]) -> bool:
    """Take an exclusive lock on ``fh`` without waiting; True when taken (always True without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no sweeping of run folders
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale(parent: Path) -> list[Path]:
    """Remove the folders under ``parent`` that no live run holds; returns what was removed."""
    removed = []
    if not parent.is_dir():
        return removed
    for child in sorted(parent.iterdir()):
        if not child.is_dir():
            continue
        if child.name.startswith(RUN_PREFIX):
            try:
                with open(child / LOCK_NAME) as fh:
                    if not _try_lock(fh):
                        continue  # in use
                    shutil.rmtree(child, ignore_errors=True)
            except FileNotFoundError:  # no lock file: being created, or its run died before writing it
                try:
                    if time.time() - child.stat().st_mtime < UNLOCKED_GRACE_S:
                        continue
                except FileNotFoundError:
                    continue
                shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith(LEGACY_PREFIXES):
            shutil.rmtree(child, ignore_errors=True)
        else:
            continue
        removed.append(child)
    return removed


@dataclass
class Workdir:
    """A claimed scratch folder; `release` removes it."""

    path: Path
    _lock: IO[Any]

    def release(self) -> None:
        """Remove the folder and drop the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def claim_workdir(parent: Path) -> Workdir:
    """A new locked folder under ``parent``, after removing the folders that stopped runs left there."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent)
        for _ in range(5):
            path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=parent))
            try:
                fh = open(path / LOCK_NAME, "a")
            except FileNotFoundError:  # swept in between
                continue
            if _try_lock(fh) and (path / LOCK_NAME).is_file():  # not swept between creating and locking it
                return Workdir(path, fh)
            fh.close()
    except OSError as exc:
        raise UserError(f"cannot create a scratch folder in {parent}: {exc.strerror or exc}") from exc
    raise UserError(f"cannot claim a scratch folder in {parent}: other runs keep removing it")
