"""What the meter makes for itself on first run: the API key, the JWT secret, the admin password,
and the key of erased users' pseudonyms.

Generated secrets live in ``{METER_DATA_DIR}/secrets.json`` (mode 0600) so restarts keep them. A
setting given in the environment always wins over the stored one. The generated admin password is
never stored, only its argon2id hash, and is shown once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets

from . import clock
from .auth import hash_password
from .db import prepare_data_dir
from .errors import CannotStart

SECRETS_FILE = "secrets.json"


def _secrets_path(settings) -> str:
    return os.path.join(settings.METER_DATA_DIR, SECRETS_FILE)


def _read_stored(path: str) -> dict:
    """The stored secrets; CannotStart (never a rewrite) when the file is there but unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            stored = json.load(fh)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CannotStart(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CannotStart(f"{path} is not valid JSON (not UTF-8 text); fix or remove it (removing it makes new keys)") from None
    except json.JSONDecodeError as exc:
        raise CannotStart(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or remove it (removing it makes new keys)") from None
    if not isinstance(stored, dict):
        raise CannotStart(f"{path} must hold a JSON object of secrets, not {type(stored).__name__}; fix or remove it (removing it makes new keys)")
    for name, value in stored.items():
        if not isinstance(value, str) or not value:
            raise CannotStart(f"{path}: {name} must be a non-empty string")
    return stored


def _write_stored(path: str, stored: dict) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(stored, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)


@contextlib.contextmanager
def _locked(path: str):
    """Hold an exclusive lock beside ``path``: a server and a CLI command never both add a secret."""
    fd = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pseudonym_key(data_dir: str) -> bytes:
    """The secret key of erased users' pseudonyms, made on first use and kept in secrets.json.

    It is not in the database, so a copy of the database alone cannot tell which pseudonym is
    which Open WebUI user. Losing it only means a user erased again later gets a new pseudonym.
    """
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, SECRETS_FILE)
    with _locked(path):
        stored = _read_stored(path)
        if not isinstance(stored.get("PSEUDONYM_KEY"), str):
            stored["PSEUDONYM_KEY"] = secrets.token_urlsafe(32)
            _write_stored(path, stored)
    return stored["PSEUDONYM_KEY"].encode()


def complete_secrets(settings):
    """Settings with API_KEY and JWT_SECRET filled in; and the names generated just now."""
    prepare_data_dir(settings.METER_DATA_DIR)
    path = _secrets_path(settings)
    generated, changes = [], {}
    makers = {"API_KEY": lambda: "om_" + secrets.token_urlsafe(32), "JWT_SECRET": lambda: secrets.token_urlsafe(48)}
    with _locked(path):
        stored = _read_stored(path)
        for name, make in makers.items():
            if getattr(settings, name) is not None:
                continue
            if name not in stored:
                stored[name] = make()
                generated.append(name)
            changes[name] = stored[name]
        if generated:
            _write_stored(path, stored)
    completed = settings.replace(origin="generated", **changes) if changes else settings
    return completed, generated


def ensure_admin(db, settings) -> str | None:
    """Make sure the 'admin' account exists. Returns a generated password to show once, or None.

    With PASSWORD_HASH set, 'admin' takes that hash (so changing the env changes the password).
    Without it, a first run with no admin at all generates a password.
    """
    with db.write() as conn:
        if settings.PASSWORD_HASH:
            conn.execute(
                """INSERT INTO admins (username, password_hash, created) VALUES ('admin', ?, ?)
                   ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash""",
                (settings.PASSWORD_HASH, clock.now_ms()),
            )
            return None
        if conn.execute("SELECT 1 FROM admins LIMIT 1").fetchall():
            return None
        password = secrets.token_urlsafe(15)
        conn.execute(
            "INSERT INTO admins (username, password_hash, created) VALUES ('admin', ?, ?)",
            (hash_password(password), clock.now_ms()),
        )
        return password
