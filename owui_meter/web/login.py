"""Dashboard login: flask-login over server-side sessions, a login rate limit, and CSRF checks.

- Admin accounts live in ``admins`` (argon2id); a hash is upgraded on login when argon2-cffi's
  parameters changed.
- A session is a row in ``sessions``; the cookie only names it. Logging out deletes the row, so a
  copied cookie stops working too.
- Failed logins are limited per client address and per username (METER_LOGIN_ATTEMPTS in 15
  minutes; then 429), but a username under attack still logs in from an address it logged in
  from before. The client address is X-Forwarded-For's only with METER_TRUSTED_PROXY.
- Every state-changing request that rides on the session cookie needs the session's CSRF token
  (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends one, an
  Origin of this site. Bearer-token calls carry no cookie and need neither.
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
import time
import urllib.parse

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, login_user, logout_user
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import audit, clock
from ..auth import decode_token, key_matches, password_hasher, verify_password
from ..errors import Unauthorized
from .access import access, require_login

bp = Blueprint("login", __name__)

WINDOW_SECONDS = 15 * 60
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PLUGIN_PATHS = ("/api/v1/inlet", "/api/v1/outlet", "/api/v1/metering/record")
TOKEN_PATHS = ("/v1/traces",)  # a token of their own, never a cookie: no CSRF to check


class Admin(UserMixin):
    def __init__(self, session_id: str, admin_id: int, username: str):
        self.session_id = session_id
        self.admin_id = admin_id
        self.username = username

    def get_id(self) -> str:
        return self.session_id


class LoginLimiter:
    """Failed logins in a sliding window, in memory (a restart forgets them).

    - Per client address: after ``attempts`` failures it is refused (429) until the window passes.
    - Per username: after ``attempts`` failures from anywhere, the name is refused only from
      addresses that never logged in as it. Guessing from many addresses stops, and the admin
      still gets in from a browser that logged in before (or after the window, or a restart).
    """

    def __init__(self, attempts: int, window: float = WINDOW_SECONDS, remembered: int = 20):
        self.attempts = attempts
        self.window = window
        self.remembered = remembered
        self.failures: dict[str, collections.deque] = {}
        self.known: dict[str, collections.OrderedDict] = {}  # username -> addresses that logged in
        self.lock = threading.Lock()

    def _recent(self, key: str) -> collections.deque:
        now = time.monotonic()
        failures = self.failures.setdefault(key, collections.deque())
        while failures and failures[0] < now - self.window:
            failures.popleft()
        return failures

    def blocked(self, username: str, address: str) -> bool:
        with self.lock:
            if len(self._recent(f"ip:{address}")) >= self.attempts:
                return True
            if address in self.known.get(username, ()):
                return False
            return len(self._recent(f"user:{username}")) >= self.attempts

    def fail(self, username: str, address: str) -> None:
        with self.lock:
            for key in (f"ip:{address}", f"user:{username}"):
                self._recent(key).append(time.monotonic())

    def succeed(self, username: str, address: str) -> None:
        with self.lock:
            self.failures.pop(f"ip:{address}", None)
            known = self.known.setdefault(username, collections.OrderedDict())
            known[address] = True
            known.move_to_end(address)
            while len(known) > self.remembered:
                known.popitem(last=False)


def client_address() -> str:
    return request.remote_addr or "unknown"


def authenticate(meter, username: str, password: str) -> int | None:
    """The admin's id when the password is right; upgrades an outdated hash."""
    row = meter.db.query_one("SELECT id, password_hash FROM admins WHERE username = ?", (username,))
    if row is None:
        verify_password(_dummy_hash(), password)  # same work either way: no username probing by timing
        return None
    if not verify_password(row["password_hash"], password):
        return None
    if password_hasher().check_needs_rehash(row["password_hash"]):
        with meter.db.write() as conn:
            conn.execute("UPDATE admins SET password_hash = ? WHERE id = ?", (password_hasher().hash(password), row["id"]))
    return row["id"]


_dummy = []


def _dummy_hash() -> str:
    if not _dummy:
        _dummy.append(password_hasher().hash(secrets.token_urlsafe(16)))
    return _dummy[0]


def start_session(meter, admin_id: int, username: str) -> Admin:
    session_id = secrets.token_urlsafe(32)
    now = clock.now_ms()
    with meter.db.write() as conn:
        conn.execute("DELETE FROM sessions WHERE expires < ?", (now,))
        conn.execute("INSERT INTO sessions (id, admin_id, created, expires) VALUES (?, ?, ?, ?)",
                     (session_id, admin_id, now, now + meter.settings.METER_SESSION_HOURS * 3600 * 1000))
        audit.record(conn, username, "admin.login", {"address": client_address()})
    session.clear()
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    return Admin(session_id, admin_id, username)


def end_session(meter) -> None:
    from flask_login import current_user

    if current_user.is_authenticated:
        with meter.db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (current_user.session_id,))
    logout_user()
    session.clear()


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never another host, scheme, or protocol-relative URL."""
    if not target:
        return None
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def init_app(app, meter) -> None:
    settings = meter.settings
    if settings.METER_TRUSTED_PROXY:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.config.update(
        SESSION_COOKIE_NAME="owui_meter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=settings.METER_SESSION_HOURS * 3600,
    )
    manager = LoginManager(app)
    manager.login_view = "login.login"
    manager.login_message = None
    app.login_limiter = LoginLimiter(settings.METER_LOGIN_ATTEMPTS)

    @manager.user_loader
    def load(session_id: str):
        row = meter.db.query_one(
            "SELECT s.id, a.id AS admin_id, a.username FROM sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id = ? AND s.expires > ?",
            (session_id, clock.now_ms()),
        )
        return Admin(row["id"], row["admin_id"], row["username"]) if row else None

    @manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith("/api/"):
            raise Unauthorized("log in or send an admin token")
        return redirect(url_for("login.login", next=request.full_path.rstrip("?")))

    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def check_csrf():
        if request.method in SAFE_METHODS or request.path in PLUGIN_PATHS or request.path in TOKEN_PATHS:
            return
        if request.path.startswith("/openrouter/v1/"):
            return  # pass-through: reads no cookie and lends no credential, it forwards the caller's own
        if _bearer_call():
            return  # a browser never adds a Bearer header by itself: a forged cross-site request cannot
        origin = request.headers.get("Origin")
        if origin and origin != request.host_url.rstrip("/"):
            abort(403, "cross-site request refused")
        if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            abort(403, "cross-site request refused")
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(403, "the form expired or did not come from this site; reload the page and try again")

    app.session_interface = SessionCookies(settings.METER_SECURE_COOKIES)


def _bearer_call() -> bool:
    """A request that carries a valid admin token or the plugin key as ``Bearer``. Any other
    Authorization header (a browser adds ``Basic`` credentials by itself) keeps the CSRF check."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    settings = current_app.config["METER"].settings
    if key_matches(token.strip(), settings.API_KEY):
        return True
    try:
        decode_token(token.strip(), settings.JWT_SECRET)
    except Unauthorized:
        return False
    return True


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure per METER_SECURE_COOKIES ("auto": when the request is HTTPS,
    directly or through a trusted proxy)."""

    def __init__(self, mode: str):
        self.mode = mode

    def get_cookie_secure(self, app) -> bool:
        if self.mode == "auto":
            return request.is_secure
        return self.mode == "true"

    def open_session(self, app, request):
        # the plugin's calls carry no cookie: skip building the signer (a third of a cookie-less
        # request's Flask overhead); a session is still signed whenever one is saved
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not session and not session.modified:
            # nothing to set or delete (the plugin's calls): Flask would still read every cookie
            # setting first. Vary: Cookie as Flask adds it when the session was looked at.
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


# --- the pages ------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
@access("public")
def login_page():
    if request.method == "GET":
        return render_template("login.html", next=safe_next(request.args.get("next")))
    meter = current_app.config["METER"]
    limiter = current_app.login_limiter
    username = request.form.get("username", "")[:200]
    name, address = username.lower(), client_address()
    if limiter.blocked(name, address):
        return render_template("login.html", error="Too many failed attempts. Wait 15 minutes and try again.", next=None), 429
    admin_id = authenticate(meter, username, request.form.get("password", ""))
    if admin_id is None:
        limiter.fail(name, address)
        with meter.db.write() as conn:  # the rate limit above bounds how often this writes
            audit.record(conn, "anonymous", "admin.login_failed", {"username": username[:64], "address": address})
        return render_template("login.html", error="Wrong username or password.", next=safe_next(request.form.get("next"))), 401
    limiter.succeed(name, address)
    login_user(start_session(meter, admin_id, username))
    return redirect(safe_next(request.form.get("next")) or url_for("dashboard.overview"))


@bp.post("/logout")
@require_login
def logout():
    end_session(current_app.config["METER"])
    return redirect(url_for("login.login"))
