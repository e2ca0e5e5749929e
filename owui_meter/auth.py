"""Credentials: comparing keys, signed tokens (JWT), and admin passwords (argon2id).

Tokens are signed with ``JWT_SECRET``, HS256 only, ``exp`` required. Which routes take which
credential is the web layer's business (``web/access.py``); this module only checks them.
"""

from __future__ import annotations

import hmac
import uuid

import jwt

from . import audit, clock
from .errors import Unauthorized

JWT_ALGORITHM = "HS256"
ADMIN_SCOPE = "admin"


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def create_token(secret: str, *, days: float = 30, name: str = "admin", scope: str = ADMIN_SCOPE) -> str:
    """A signed token (JWT) for ``scope`` (admin API, or a user's own page) that expires after ``days``."""
    now = int(clock.now())
    claims = {
        "sub": name,
        "scope": scope,
        "iat": now,
        "exp": now + int(days * 86400),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_token(token: str, secret: str, *, scope: str = ADMIN_SCOPE) -> dict:
    """Claims of a valid token of ``scope``; raises Unauthorized otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],  # fixed: never the token's own 'alg'
            # times are checked below against the meter's clock (the one tests can move)
            options={"require": ["exp", "iat", "sub", "scope"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise Unauthorized("invalid or expired token") from None
    if not isinstance(claims["exp"], (int, float)) or claims["exp"] <= clock.now():
        raise Unauthorized("invalid or expired token")
    if claims.get("scope") != scope:
        raise Unauthorized("token is not valid here")
    return claims


# --- admin tokens on record (owui-meter token create | list | revoke) --------------------------


def issue_admin_token(meter, name: str, days: float) -> str:
    """A new admin token, recorded (never the token itself) so it can be listed and revoked."""
    token = create_token(meter.settings.JWT_SECRET, days=days, name=name)
    claims = jwt.decode(token, options={"verify_signature": False})
    with meter.db.write() as conn:
        conn.execute("INSERT INTO admin_tokens (jti, name, created, expires) VALUES (?, ?, ?, ?)",
                     (claims["jti"], name, clock.now_ms(), claims["exp"] * 1000))
        audit.record(conn, "cli", "token.create", {"jti": claims["jti"], "name": name})
    return token


def revoke_admin_tokens(meter, ident: str) -> int:
    """Revoke the tokens whose id (or its first 8+ characters) or name is ``ident``; how many."""
    with meter.db.write() as conn:
        rows = conn.execute(
            """UPDATE admin_tokens SET revoked = ? WHERE revoked IS NULL
               AND (name = ? OR jti = ? OR (length(?) >= 8 AND substr(jti, 1, length(?)) = ?)) RETURNING jti""",
            (clock.now_ms(), ident, ident, ident, ident, ident),
        ).fetchall()
        for row in rows:
            audit.record(conn, "cli", "token.revoke", {"jti": row["jti"]})
    return len(rows)


def token_revoked(db, claims: dict) -> bool:
    """True when the token with these claims was revoked. Tokens not on record (made before
    tokens were recorded) stay valid until they expire or JWT_SECRET changes."""
    row = db.query_one("SELECT revoked FROM admin_tokens WHERE jti = ?", (str(claims.get("jti", "")),))
    return bool(row and row["revoked"])


# --- passwords ------------------------------------------------------------------------------

_hasher = None


def password_hasher():
    """argon2id with argon2-cffi's current recommended parameters."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return password_hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
