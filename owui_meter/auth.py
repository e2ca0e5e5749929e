"""Credentials: comparing keys, signed tokens (JWT), and admin passwords (argon2id).

Tokens are signed with ``JWT_SECRET``, HS256 only, ``exp`` required. Which routes take which
credential is the web layer's business (``web/access.py``); this module only checks them.
"""

from __future__ import annotations

import hmac
import uuid

import jwt

from . import clock
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
