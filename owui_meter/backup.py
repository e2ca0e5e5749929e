"""Backups: a consistent copy of the live database, checked before it counts, and restore.

``VACUUM INTO`` reads one snapshot of the database while the meter keeps writing, so the copy
holds every event committed before it began. The copy is checked with ``PRAGMA quick_check``
before an atomic rename gives it its final name.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil

import apsw

from . import clock
from .db import connect, migrations
from .workers import Job

RUN_LOCK = "meter.lock"


class BackupError(Exception):
    pass


def check(path: str) -> int:
    """Open a backup and check it; returns its schema version. Raises BackupError."""
    try:
        conn = connect(path, readonly=True)
        try:
            result = conn.execute("PRAGMA quick_check").fetchall()[0]["quick_check"]
            version = conn.execute("PRAGMA user_version").fetchall()[0]["user_version"]
            tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        finally:
            conn.close()
    except apsw.Error as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    if result != "ok":
        raise BackupError(f"{path} failed its integrity check: {result}")
    if not {"events", "users"} <= tables:
        raise BackupError(f"{path} is not an owui-meter database")
    if version > migrations()[-1][0]:
        raise BackupError(f"{path} comes from a newer owui-meter (schema {version}); upgrade first")
    return version


def backup(db_path: str, dest: str) -> str:
    """Copy the database at ``db_path`` to ``dest`` (a file, or a directory for a dated name)."""
    if os.path.isdir(dest):
        stamp = dt.datetime.fromtimestamp(clock.now(), tz=dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        dest = os.path.join(dest, f"meter-{stamp}.db")
    tmp = dest + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    conn = connect(db_path, readonly=True)
    try:
        conn.execute("VACUUM INTO ?", (tmp,))
        check(tmp)
    except BaseException:
        if os.path.exists(tmp):  # a half-made copy (a full disk) must not keep the space it took
            os.remove(tmp)
        raise
    finally:
        conn.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)
    return dest


def hold_run_lock(data_dir: str):
    """Taken by ``serve`` for as long as it runs; returns the open file (keep it referenced)."""
    handle = open(os.path.join(data_dir, RUN_LOCK), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BackupError("another owui-meter is already running on this data directory") from None
    return handle


def restore(data_dir: str, source: str) -> str:
    """Replace the database with a checked backup; refuses while the meter runs. Returns where
    the replaced database was kept."""
    lock = hold_run_lock(data_dir)
    try:
        check(source)
        db_path = os.path.join(data_dir, "meter.db")
        kept = None
        if os.path.exists(db_path):
            stamp = dt.datetime.fromtimestamp(clock.now(), tz=dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            kept = os.path.join(data_dir, f"meter.db.before-restore-{stamp}")
            backup(db_path, kept)  # a clean single file, WAL included
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                os.remove(db_path + suffix)
        tmp = db_path + ".restore"
        shutil.copyfile(source, tmp)
        os.replace(tmp, db_path)
        return kept
    finally:
        lock.close()


class DailyBackups(Job):
    """A backup a day in {METER_DATA_DIR}/backups, keeping the newest METER_BACKUP_KEEP."""

    name = "backups"
    error_delay = 3600.0

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        self.folder = os.path.join(meter.settings.METER_DATA_DIR, "backups")
        self.last: str | None = None

    def step(self) -> float:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)  # full copies: as private as meter.db
        existing = sorted(f for f in os.listdir(self.folder) if f.startswith("meter-") and f.endswith(".db"))
        newest_age = None
        if existing:
            newest_age = clock.now() - os.path.getmtime(os.path.join(self.folder, existing[-1]))
        if newest_age is None or newest_age >= 86400:
            self.last = backup(self.meter.db.path, self.folder)
            existing = sorted(f for f in os.listdir(self.folder) if f.startswith("meter-") and f.endswith(".db"))
            newest_age = 0
        for old in existing[: max(0, len(existing) - self.meter.settings.METER_BACKUP_KEEP)]:
            os.remove(os.path.join(self.folder, old))
        return max(60.0, 86400 - newest_age)
