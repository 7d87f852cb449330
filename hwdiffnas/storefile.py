"""Opening the store's SQLite file: read-write in WAL mode, or read-only when the file cannot be written.

Errors of the file itself become one-line `UserError`s naming it: a damaged file (``database disk image is
malformed``, found on open or by any later query) and a write to a read-only store. No message advises
removing data: a damaged store is kept for ``sqlite3 FILE .recover`` and a fresh one imported elsewhere.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hwdiffnas.datadir import IMPORT_HINT
from hwdiffnas.errors import UserError

BUSY_TIMEOUT_S = 60.0


def damaged_error(path: Path, exc: BaseException) -> UserError:
    """The one-line error for a store file SQLite cannot read."""
    return UserError(f"benchmark store {path} is damaged or not an SQLite file ({exc}); keep it (sqlite3 {path} "
                     f".recover can salvage rows) and import into another data directory with --data-dir DIR: "
                     f"{IMPORT_HINT}")


class ReadOnlyStore(UserError):
    """A write to a store that cannot be written."""


def readonly_error(path: Path) -> UserError:
    """The one-line error for a write to a store opened read-only."""
    return ReadOnlyStore(f"benchmark store {path} is read-only here (no write permission on the file or its folder); "
                     f"this command writes to it: make it writable (chmod u+w) or use another --data-dir")


def _translate(path: Path, exc: sqlite3.Error) -> BaseException:
    if type(exc) is sqlite3.DatabaseError:  # "database disk image is malformed", "file is not a database"
        return damaged_error(path, exc)
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
        return readonly_error(path)
    return exc


def _guarded(name: str) -> Any:
    """``sqlite3.Cursor.<name>`` with file-level errors (damaged, read-only) turned into one-line `UserError`s."""
    base = getattr(sqlite3.Cursor, name)

    def method(self: sqlite3.Cursor, *args: Any) -> Any:
        try:
            return base(self, *args)
        except sqlite3.Error as exc:
            raise _translate(self.connection.store_path, exc) from exc  # type: ignore[attr-defined]

    method.__name__ = name
    return method


class _Cursor(sqlite3.Cursor):
    """A cursor whose file-level errors are one-line `UserError`s (damaged pages are found by any query)."""

    execute = _guarded("execute")
    executemany = _guarded("executemany")
    fetchone = _guarded("fetchone")
    fetchall = _guarded("fetchall")
    __next__ = _guarded("__next__")


class _Connection(sqlite3.Connection):
    """A connection whose cursors are `_Cursor`s."""

    store_path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:  # noqa: D102
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = ()) -> Any:  # noqa: D102
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:  # noqa: D102
        return self.cursor().executemany(sql, parameters)


def _connect(path: Path, readonly: bool, immutable: bool = False) -> sqlite3.Connection:
    mode = "immutable=1" if immutable else "mode=ro"
    target = f"file:{quote(str(path.resolve()))}?{mode}" if readonly else str(path)
    try:
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False,
                               uri=readonly, factory=_Connection)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open benchmark store {path}: {exc}") from exc
    conn.store_path = path
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # reads (and checks) the header
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
                raise UserError(f"benchmark store {path}: cannot enable WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def open_connection(path: Path, create: bool) -> tuple[sqlite3.Connection, bool]:
    """Connect to the store file; returns (connection, read_only).

    A store that is only read (``create=False``) is opened read-only when its file or folder cannot be
    written, without switching its journal mode (a write); otherwise the journal is set to WAL. A WAL store
    in a folder that cannot be written has no shared-memory file to read through: without a ``-wal`` file
    (no writer can have left one there) it is read as immutable.
    """
    readonly = not create and path.is_file() and not os.access(path, os.W_OK)
    if create:
        return _connect(path, False), False
    attempts = ([] if readonly else [(False, False)]) + [(True, False), (True, True)]
    for ro, immutable in attempts:
        try:
            return _connect(path, ro, immutable), ro
        except ReadOnlyStore:
            if immutable or (ro and Path(f"{path}-wal").exists()):
                raise
    raise readonly_error(path)  # pragma: no cover - the last attempt returns or raises
