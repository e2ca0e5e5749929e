"""SQLite through apsw: one writer connection behind a lock, one reader connection per thread.

WAL mode lets readers run while the writer writes. Every write goes through :meth:`Database.write`,
so SQLite never sees two writers from this process. Migrations in ``migrations/NNNN_name.sql`` are
applied in order at open, tracked with ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import re
import threading

import apsw
import apsw.bestpractice

log = logging.getLogger("owui_meter.db")

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_logging_forwarded = False


def _dict_row(cursor, row):
    return {d[0]: value for d, value in zip(cursor.get_description(), row)}


def connect(path: str, *, readonly: bool = False) -> apsw.Connection:
    """A connection with the meter's pragmas; rows come back as dicts.

    Readers open read-only, so nothing but the writer can ever write (not even ``PRAGMA
    optimize``, which apsw.bestpractice would run on every new connection).
    """
    global _logging_forwarded
    if not _logging_forwarded:
        apsw.bestpractice.library_logging()  # SQLite's own log -> Python logging
        _logging_forwarded = True
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(path, flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    apsw.bestpractice.connection_dqs(conn)  # "double quotes" are identifiers, never strings
    conn.pragma("foreign_keys", True)
    conn.pragma("recursive_triggers", True)
    if not readonly:
        conn.pragma("journal_mode", "wal")
        # WAL + NORMAL: a commit survives a crash of the process (not always a power cut)
        conn.pragma("synchronous", "NORMAL")
        conn.pragma("optimize", 0x10002)
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


class _Job:
    """One unit of work for :meth:`Database.submit`."""

    __slots__ = ("job", "result", "error", "finished")

    def __init__(self, job):
        self.job = job
        self.result = None
        self.error = None
        self.finished = False

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class Database:
    """The meter's database file: a locked writer and per-thread readers."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._write_lock = threading.Lock()
        self._after_commit: list = []
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = connect(path)
        self.applied_migrations = migrate(self._writer)

    # --- writes ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self):
        """``with db.write() as conn:`` runs one transaction on the single writer connection."""
        with self._write_lock, self._transaction() as conn:
            yield conn

    def after_commit(self, callback) -> None:
        """Inside a write: call ``callback()`` once the transaction has committed, e.g. to wake a
        worker that reads what was written. Dropped on rollback. A hint, not a guarantee: it may
        also run for a job of a group commit whose own savepoint was rolled back."""
        self._after_commit.append(callback)

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the transaction is committed: a failing hint must not say otherwise
                log.exception("after-commit callback failed")

    def submit(self, job):
        """Run ``job(conn)`` in a write transaction shared with other waiting jobs; its result.

        Group commit: whichever thread gets the write lock runs every job queued so far, each in
        its own savepoint (one failing job does not undo the others), and commits them together.
        A job's result is returned only after that commit, so an acknowledged event is stored.
        Under concurrent load this spreads one COMMIT (most of a write's cost) over many events.
        """
        entry = _Job(job)
        with self._pending_lock:
            self._pending.append(entry)
        with self._write_lock:
            if not entry.finished:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._run_batch(batch)
        return entry.outcome()

    @contextlib.contextmanager
    def _transaction(self):
        """The one way anything is written: BEGIN IMMEDIATE … COMMIT, rolled back on any failure,
        a failed COMMIT included (a full disk, an I/O error), so the next write starts clean
        instead of finding a transaction still open. Caller holds the write lock."""
        conn = self._writer
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that read first
        # could not upgrade if anything else (a backup, a CLI command) wrote in between.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            self._after_commit.clear()
            raise
        self._run_after_commit()

    def _run_batch(self, batch: list["_Job"]) -> None:
        try:
            with self._transaction() as conn:
                if len(batch) == 1:  # alone: no savepoint needed, a failure rolls back the whole
                    batch[0].result = batch[0].job(conn)
                else:
                    for entry in batch:
                        conn.execute("SAVEPOINT job")
                        try:
                            entry.result = entry.job(conn)
                        except Exception as exc:
                            conn.execute("ROLLBACK TO job")
                            entry.error = exc
                        conn.execute("RELEASE job")
        except Exception as exc:
            for entry in batch:
                entry.result, entry.error = None, exc
        for entry in batch:
            entry.finished = True

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
            conn = connect(self.path, readonly=True)
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
