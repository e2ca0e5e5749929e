"""SQLite through apsw: one writer connection behind a lock, one reader connection per thread.

WAL mode lets readers run while the writer writes. Every write goes through :meth:`Database.write`,
so SQLite never sees two writers from this process. Migrations in ``migrations/NNNN_name.sql`` are
applied in order at open, tracked with ``PRAGMA user_version``.

Before opening, a file that is not the meter's own (another application's, a newer schema,
garbage, truncated) is refused untouched (:func:`inspect_file`); the files are kept 0600 in a 0700
directory. A write that fails for lack of disk space is noted (logged once a minute) and
reported by :meth:`Database.space_problem` until a write works again.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import re
import threading
import time
import urllib.parse

import apsw
import apsw.bestpractice

from .errors import CannotStart

log = logging.getLogger("owui_meter.db")

BUSY_TIMEOUT_MS = 5000
DISK_FULL_LOG_SECONDS = 60  # at most one log line per this many seconds while the disk is full
LOW_SPACE_BYTES = 64 * 1024  # below this, the disk counts as full even before a write fails
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
        # what is deleted (an erased user) is overwritten with zeros, not left in free pages
        conn.pragma("secure_delete", True)
        try:
            conn.pragma("optimize", 0x10002)
        except apsw.FullError:
            pass  # only an optimisation: a full disk must not stop the meter from starting
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


SQLITE_HEADER = b"SQLite format 3\x00"
OUR_TABLES = {"events", "users", "meta"}  # made by 0001_initial.sql: what tells our database apart


def prepare_data_dir(directory: str) -> None:
    """Make the data directory (0700) or check that the meter can use it; CannotStart if not.

    It holds password hashes and personal data: an existing directory the meter owns is made
    0700 as well, and the files in it are made 0600 when opened.
    """
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise CannotStart(f"the data directory {directory} is not a directory")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CannotStart(f"cannot create the data directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise CannotStart(f"cannot use the data directory {directory}: permission denied to user id {os.getuid()} (it needs read, write and search)")
    _make_private(directory, 0o700)


def _make_private(path: str, mode: int) -> None:
    """chmod ``path`` to ``mode`` if it is ours and more open than that."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o777 != mode:
        try:
            os.chmod(path, mode)
        except OSError:
            pass  # a read-only mount: the meter still works, the mode stays as the admin set it


def inspect_file(path: str) -> None:
    """Refuse, before anything opens it for writing, a file the meter must not take over.

    A missing or empty file is a new database. Anything else must be an SQLite database whose
    tables are ours, at a schema version this meter knows. Reading happens without locks or
    journal files (immutable) when nothing else uses the file, so a refused file is left as it was.
    Raises CannotStart naming the file and what is wrong.
    """
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise CannotStart(f"{path} is a directory, not a database file") from None
    except OSError as exc:
        raise CannotStart(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        return
    if not header.startswith(SQLITE_HEADER):
        raise CannotStart(f"{path} is not an SQLite database (it does not start with SQLite's header): move it away or restore a backup")
    if len(header) < 100:
        raise CannotStart(f"{path} is truncated: {size} bytes, less than SQLite's 100-byte header")
    wal = path + "-wal"
    has_wal = os.path.exists(wal) and os.path.getsize(wal) > 0
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_size_valid = header[24:28] == header[92:96]  # SQLite's own rule for trusting the page count
    if not has_wal and header_size_valid and size < pages * page_size:
        raise CannotStart(f"{path} is truncated: {size} bytes where its header says {pages * page_size}; restore a backup")
    # immutable (no locks, no -shm made) only when no process can be using the file: with a WAL or
    # -shm beside it a server may be writing, and an ordinary read-only connection is safe
    in_use = has_wal or os.path.exists(path + "-shm")
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + ("?mode=ro" if in_use else "?immutable=1")
    try:
        conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        try:
            version = conn.execute("PRAGMA user_version").fetchall()[0][0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        finally:
            conn.close()
    except apsw.Error as exc:
        raise CannotStart(f"{path} cannot be read as a database ({exc}): move it away or restore a backup") from None
    if not tables and version == 0:
        return  # an empty database: ours to set up
    if not OUR_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise CannotStart(f"{path} is not an owui-meter database (its tables: {shown or 'none'}); point METER_DATA_DIR at another directory")
    _refuse_newer(path, version)


def _refuse_newer(path: str, version: int) -> None:
    newest = migrations()[-1][0]
    if version > newest:
        raise CannotStart(f"{path} comes from a newer owui-meter (schema version {version}; this one knows up to {newest}): upgrade owui-meter or restore a backup made by this version")


def migrate(conn: apsw.Connection) -> list[str]:
    """Apply the migrations newer than the file's user_version; returns their names."""
    applied = []
    current = conn.execute("PRAGMA user_version").fetchall()[0]["user_version"]
    _refuse_newer(conn.filename, current)  # again: a WAL not checkpointed may hold a newer version
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
        """Open the database at ``path`` (made, 0600, if missing) and migrate it. Raises CannotStart
        for a file the meter will not use (see :func:`inspect_file`)."""
        self.path = path
        prepare_data_dir(os.path.dirname(os.path.abspath(path)))
        inspect_file(path)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite gives -wal and -shm its mode
        for name in (path, path + "-wal", path + "-shm"):
            _make_private(name, 0o600)
        self._write_lock = threading.Lock()
        self._after_commit: list = []
        self.full_since: float | None = None  # time.time() writes began failing for lack of space
        self._full_logged: float | None = None
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._writer = connect(path)
        except apsw.Error as exc:
            raise CannotStart(f"cannot open {path}: {exc}") from None
        try:
            self.applied_migrations = migrate(self._writer)
        except apsw.FullError:
            self._writer.close()
            raise CannotStart(f"cannot upgrade {path} to this version's schema: {free_space_text(path)}") from None
        except BaseException:
            self._writer.close()
            raise

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
        except BaseException as exc:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            self._after_commit.clear()
            if isinstance(exc, apsw.FullError):
                self._out_of_space()
            raise
        self._space_back()
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
                        except apsw.FullError:
                            raise  # the disk is full: the whole batch fails, nothing is acknowledged
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

    # --- disk space --------------------------------------------------------------------------

    def space_problem(self) -> str | None:
        """Why writes fail (or are about to) for lack of disk space; None when there is room.

        After a write failed for lack of space, a small real write tells whether space is back,
        so the meter recovers without a restart as soon as something frees room.
        """
        if self.full_since is not None:
            try:
                with self.write() as conn:
                    set_meta(conn, "disk.checked", str(int(time.time())))
            except apsw.FullError:
                return f"disk full: writes fail since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.full_since))}; {free_space_text(self.path)}"
        free = free_bytes(self.path)
        if free is not None and free < LOW_SPACE_BYTES:
            return f"disk full: {free_space_text(self.path)}"
        return None

    def _out_of_space(self) -> None:
        now = time.monotonic()
        if self.full_since is None:
            self.full_since = time.time()
        if self._full_logged is None or now - self._full_logged >= DISK_FULL_LOG_SECONDS:
            self._full_logged = now
            log.error("disk full: writes to %s fail (%s); plugin writes answer 503 until space is freed", self.path, free_space_text(self.path))

    def _space_back(self) -> None:
        if self.full_since is not None:
            self.full_since = None
            log.warning("disk space is back: writes to %s work again", self.path)

    def checkpoint(self) -> bool:
        """Copy the WAL into the database file and empty it (after an erasure, so what was erased
        is in neither file). False, with a warning, when it could not finish: a read that kept
        running through the busy timeout, or a full disk."""
        with self._write_lock:
            try:
                busy = self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]["busy"]
            except apsw.FullError:
                self._out_of_space()
                busy = True
        if busy:
            log.warning("the WAL of %s could not be emptied now; the next checkpoint empties it", self.path)
        return not busy

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


def free_bytes(path: str) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def free_space_text(path: str) -> str:
    free = free_bytes(path)
    where = os.path.dirname(os.path.abspath(path))
    return f"{free} bytes free in {where}" if free is not None else f"free space in {where} unknown"
