"""SQLite through apsw: one writer connection behind a lock, one reader connection per thread.

WAL mode lets readers run while the writer writes. Every write goes through :meth:`Database.write`,
so SQLite never sees two writers from this process. Migrations in ``migrations/NNNN_name.sql`` are
applied in order at open, tracked with ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import threading

import apsw
import apsw.bestpractice

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_bestpractice_applied = False


def _apply_bestpractice() -> None:
    # apsw.bestpractice hooks every new connection (busy timeout, WAL, foreign keys, no
    # double-quoted string literals, optimize on close) and routes SQLite's log to logging.
    global _bestpractice_applied
    if not _bestpractice_applied:
        apsw.bestpractice.apply(apsw.bestpractice.recommended)
        _bestpractice_applied = True


def _dict_row(cursor, row):
    return {d[0]: value for d, value in zip(cursor.get_description(), row)}


def connect(path: str, *, readonly: bool = False) -> apsw.Connection:
    """A connection with the meter's pragmas; rows come back as dicts."""
    _apply_bestpractice()
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(path, flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON")
    conn.row_trace = _dict_row
    return conn


def migrations() -> list[tuple[int, str, str]]:
    """(number, file name, sql) of every migration shipped with the package, in order."""
    found = []
    folder = importlib.resources.files("owui_meter") / "migrations"
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def migrate(conn: apsw.Connection) -> list[str]:
    """Apply the migrations newer than the file's user_version; returns their names."""
    applied = []
    current = conn.execute("PRAGMA user_version").fetchall()[0]["user_version"]
    for number, name, sql in migrations():
        if number <= current:
            continue
        with conn:  # each migration and its version bump commit together, or not at all
            conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {number:d}")
        applied.append(name)
    return applied


class Database:
    """The meter's database file: a locked writer and per-thread readers."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = connect(path)
        self.applied_migrations = migrate(self._writer)

    # --- writes ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self):
        """``with db.write() as conn:`` runs one transaction on the single writer connection."""
        with self._write_lock:
            with self._writer:
                yield self._writer

    def can_write(self) -> bool:
        """True when the writer can take SQLite's write lock (used by /healthcheck)."""
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            self._writer.execute("ROLLBACK")
        return True

    # --- reads ----------------------------------------------------------------------------

    def reader(self) -> apsw.Connection:
        """This thread's read connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def query(self, sql: str, params=()) -> list[dict]:
        return self.reader().execute(sql, params).fetchall()

    def query_one(self, sql: str, params=()) -> dict | None:
        rows = self.reader().execute(sql, params).fetchall()
        return rows[0] if rows else None

    def iterate(self, sql: str, params=()):
        """Rows one at a time, for streaming large results (CSV)."""
        yield from self.reader().execute(sql, params)

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()


def get_meta(db: Database, key: str, default: str | None = None) -> str | None:
    row = db.query_one("SELECT value FROM meta WHERE key = ?", (key,))
    return row["value"] if row else default


def set_meta(conn, key: str, value: str) -> None:
    """Inside a write transaction: ``with db.write() as conn: set_meta(conn, k, v)``."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
