"""Who may call what: the plugin's API key, admin JWTs, and the admin login session.

The plugin key opens only the plugin endpoints. Admin endpoints take a JWT signed with
``JWT_SECRET`` (HS256 only, ``exp`` required) or a logged-in dashboard session.
"""

from __future__ import annotations

import functools
import hmac
import uuid

import jwt
from flask import current_app, g, request

from . import clock

JWT_ALGORITHM = "HS256"
ADMIN_SCOPE = "admin"


class Unauthorized(Exception):
    """No credentials, or wrong ones. The API answers 401."""


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_plugin_key(view):
    """The plugin's endpoints: ``Authorization: Bearer API_KEY``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not key_matches(_bearer(), current_app.config["METER"].settings.API_KEY):
            raise Unauthorized("missing or wrong API key")
        return view(*args, **kwargs)

    return wrapper


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


def _session_admin():
    """The logged-in dashboard admin, when flask-login is set up and someone is logged in."""
    if "login_manager" not in current_app.extensions and not hasattr(current_app, "login_manager"):
        return None
    from flask_login import current_user

    return current_user if current_user.is_authenticated else None


def require_admin(view):
    """Admin JSON API: a JWT bearer token or a logged-in session."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = _bearer()
        if token is not None:
            meter = current_app.config["METER"]
            g.admin_name = decode_token(token, meter.settings.JWT_SECRET)["sub"]
        else:
            admin = _session_admin()
            if admin is None:
                raise Unauthorized("log in or send an admin token")
            g.admin_name = admin.username
        return view(*args, **kwargs)

    return wrapper


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
