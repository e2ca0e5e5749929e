"""Every setting of the meter, declared once: env name, type, default, help.

Settings come from the environment only. A secret may also come from ``NAME_FILE`` (a path, as
Docker secrets mount them). An invalid value raises :class:`SettingsError` naming the variable;
the CLI turns that into a message and exit code 2.
"""

from __future__ import annotations

import os
import string
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import BadInput
from .money import parse_usd_nano, usd_to_nano


class SettingsError(ValueError):
    """A setting has a value the meter cannot use."""


@dataclass(frozen=True)
class Setting:
    env: str
    kind: str  # str, int, bool, usd, decimal, url, timezone, choice
    default: object
    help: str
    group: str
    secret: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()


def _s(env, kind, default, help, group, **kw):
    return Setting(env, kind, default, help, group, **kw)


SETTINGS: tuple[Setting, ...] = (
    # --- core ---------------------------------------------------------------------------------
    _s("METER_DATA_DIR", "str", "./data", "Directory holding meter.db and the secrets generated on first run.", "core"),
    _s("METER_HOST", "str", "127.0.0.1", "Address to listen on (0.0.0.0 inside a container).", "core"),
    _s("METER_PORT", "int", 45000, "TCP port to listen on.", "core", minimum=1, maximum=65535),
    _s("WORKER", "int", 8, "Number of waitress worker threads (name kept from owui-metering).", "core", minimum=1, maximum=256),
    _s("API_KEY", "str", None, "Bearer key the Open WebUI plugin sends. Generated and kept in the data directory when unset.", "core", secret=True),
    _s("JWT_SECRET", "str", None, "Secret that signs admin API tokens (at least 32 characters). Generated when unset.", "core", secret=True),
    _s("PASSWORD_HASH", "str", None, "argon2id hash of the 'admin' dashboard password (owui-meter hash-password). When unset, a password is generated on first run and printed once.", "core", secret=True),
    _s("METER_MAX_ANSWER_USD", "usd", "1000", "Most one answer may cost; a report above it is refused as absurd (400), never stored.", "core"),
    _s("METER_CONNECTION_LIMIT", "int", 1000, "Most client connections held open at once. At the limit a new connection is still accepted and the one waiting longest without a complete request is closed, so idle or slow clients cannot lock the plugin out.", "core", minimum=10, maximum=100000),
    _s("METER_CLIENT_TIMEOUT_SECONDS", "int", 30, "A connection is closed when it sits idle this long, or takes longer than this to send one whole request (trickled bytes do not extend it).", "core", minimum=1, maximum=3600),
    _s("METER_MAX_BODY_BYTES", "int", 1048576, "Largest accepted request body in bytes; larger bodies get 413.", "core", minimum=1024),
    _s("METER_TIMEZONE", "timezone", "UTC", "IANA time zone for days, weeks and months in charts, budgets and statements.", "core"),
    _s("METER_LOG_LEVEL", "choice", "INFO", "Log level.", "core", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    # --- OpenRouter ---------------------------------------------------------------------------
    _s("OPENROUTER_API_KEY", "str", None, "OpenRouter key used to confirm costs (generation lookups), sync prices and reconcile. Unset: costs stay inline or estimated.", "openrouter", secret=True),
    _s("OPENROUTER_BASE_URL", "url", "https://openrouter.ai/api/v1", "OpenRouter API base URL (tests and proxies point it elsewhere).", "openrouter"),
    _s("OPENROUTER_TIMEOUT_SECONDS", "int", 10, "Connect and read timeout of each OpenRouter request.", "openrouter", minimum=1, maximum=300),
    _s("METER_LOOKUP_CONCURRENCY", "int", 4, "Most generation lookups in flight at once.", "openrouter", minimum=1, maximum=64),
    _s("METER_LOOKUP_RATE", "int", 10, "Most generation lookups started per second.", "openrouter", minimum=1, maximum=1000),
    _s("METER_LOOKUP_FIRST_RETRY_MS", "int", 1000, "Wait before retrying a lookup OpenRouter does not know yet (404); doubles each time.", "openrouter", minimum=1),
    _s("METER_LOOKUP_MAX_RETRY_SECONDS", "int", 900, "Longest wait between two tries of one lookup.", "openrouter", minimum=1),
    _s("METER_LOOKUP_GIVE_UP_HOURS", "int", 24, "Stop looking up a generation this long after the answer; its inline or estimated cost stays.", "openrouter", minimum=1),
    _s("METER_LOOKUP_PAUSE_MINUTES", "int", 10, "After OpenRouter refuses the key (401/402/403), pause lookups this long before trying again.", "openrouter", minimum=1),
    _s("METER_OTLP_TOKEN", "str", None, "Bearer token OpenRouter Broadcast must send to POST /v1/traces (header Authorization: Bearer …). Unset: /v1/traces answers 404.", "openrouter", secret=True),
    _s("METER_BROADCAST_WINDOW_SECONDS", "int", 120, "How long a generation received from OpenRouter Broadcast waits for the plugin's answer that names it before it is billed on its own (to its user, or as not attributed to a user).", "openrouter", minimum=0, maximum=86400),
    _s("METER_PRICE_SYNC_HOURS", "int", 24, "How often to sync OpenRouter's model price list.", "openrouter", minimum=1),
    _s("METER_KEY_SAMPLE_MINUTES", "int", 60, "How often to sample the key's running usage from OpenRouter (GET /key) for reconciliation.", "openrouter", minimum=1),
    _s("METER_BYOK_COST", "choice", "provider+fee", "What a bring-your-own-key (BYOK) answer costs the team: provider+fee (the provider's charge plus OpenRouter's fee), or fee (OpenRouter's fee only, for teams whose provider spend is billed elsewhere).", "openrouter", choices=("provider+fee", "fee")),
    _s("METER_WORKER_POLL_MS", "int", 500, "How often the background workers look for due work.", "openrouter", minimum=10, maximum=60000),
    # --- pass-through ---------------------------------------------------------------------------
    _s("METER_PASSTHROUGH", "bool", False, "Serve /openrouter/v1/*: forward Open WebUI's OpenRouter connection to OPENROUTER_BASE_URL and record every generation (tasks included). Puts the meter on the chat path.", "passthrough"),
    _s("METER_FORWARD_JWT_SECRET", "str", None, "Open WebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET: pass-through then takes the user only from the signed X-OpenWebUI-User-Jwt and refuses (401) a request without a valid one. Unset: the X-OpenWebUI-User-* headers are trusted.", "passthrough", secret=True),
    _s("METER_PASSTHROUGH_WINDOW_SECONDS", "int", 120, "How long a pass-through generation waits for the plugin to report it as part of an answer before it is billed on its own (as a task, or an API call).", "passthrough", minimum=0, maximum=86400),
    _s("METER_PASSTHROUGH_STREAMS", "int", 256, "Most pass-through requests in flight at once; the server gets this many threads on top of WORKER, so long streams never hold up the plugin's calls.", "passthrough", minimum=1, maximum=4096),
    _s("METER_PASSTHROUGH_TIMEOUT_SECONDS", "int", 600, "Longest wait for the next bytes from OpenRouter on a pass-through request (a long non-streamed answer sends nothing until it is done).", "passthrough", minimum=1, maximum=3600),
    _s("METER_PASSTHROUGH_MAX_BODY_BYTES", "int", 67108864, "Largest pass-through request body in bytes (chats with images and files are large); larger ones get 413.", "passthrough", minimum=1024),
    # --- budgets and balances -------------------------------------------------------------------
    _s("METER_BLOCK_MESSAGE", "str", "You have used {spent} of your {limit} {period} budget. It renews on {renews}.", "Message a user sees when blocked by a daily, weekly or monthly budget; placeholders {spent}, {limit}, {period}, {renews}.", "budgets"),
    _s("METER_ALLOWANCE_BLOCK_MESSAGE", "str", "You have used {spent} of your one-off allowance of {limit}. It does not renew: ask your administrator for more.", "Message a user sees when a one-off allowance (period none) is used up; placeholders {spent}, {limit}.", "budgets"),
    _s("METER_BUDGET_RESERVE_USD", "usd", "0", "Block when less than this is left of a budget, to cap the overshoot of answers already under way.", "budgets"),
    _s("METER_BALANCES_ENABLED", "bool", False, "Prepaid balances: a user at or below zero is blocked.", "budgets"),
    _s("METER_INITIAL_BALANCE", "usd", "0", "Credit a new user starts with when balances are enabled.", "budgets"),
    _s("METER_PUBLIC_URL", "url", None, "The meter's address as users reach it; when set, each answer's line links to the user's own usage page.", "budgets"),
    _s("METER_ALERT_WEBHOOK_URL", "url", None, "Slack-compatible webhook told when a user crosses a warning threshold or is blocked (once per budget and period).", "budgets"),
    _s("OPENWEBUI_URL", "url", None, "Open WebUI's address, to sync users, groups and memberships from its admin API.", "budgets"),
    _s("OPENWEBUI_API_KEY", "str", None, "An Open WebUI admin API key for that sync.", "budgets", secret=True),
    _s("METER_OWUI_SYNC_MINUTES", "int", 15, "How often to sync users and groups from Open WebUI.", "budgets", minimum=1),
    # --- dashboard ----------------------------------------------------------------------------
    _s("METER_SESSION_HOURS", "int", 12, "How long a dashboard login lasts.", "dashboard", minimum=1, maximum=24 * 90),
    _s("METER_TRUSTED_PROXY", "bool", False, "Behind a reverse proxy: take the client address and scheme from X-Forwarded-For / X-Forwarded-Proto.", "dashboard"),
    _s("METER_SECURE_COOKIES", "choice", "auto", "Secure session cookie: true, false, or auto (true when the request came over HTTPS).", "dashboard", choices=("auto", "true", "false")),
    _s("METER_LOGIN_ATTEMPTS", "int", 5, "Failed logins allowed per client address and per username within 15 minutes.", "dashboard", minimum=1),
    # --- statements -------------------------------------------------------------------------------
    _s("METER_LANGUAGE", "choice", "en", "Language of the PDF statements and the summary, with its number, money and date formats: en, de, fr, es or zh (the CSV export keeps English column names).", "statements", choices=("en", "de", "fr", "es", "zh")),
    _s("METER_ORG_NAME", "str", None, "Sender's name at the top of statements (none when unset).", "statements"),
    _s("METER_ORG_ADDRESS", "str", None, "Sender's address on statements; separate its lines with \\n (or real line breaks).", "statements"),
    _s("METER_ORG_TAX_ID", "str", None, "Sender's tax or VAT number on statements (none when unset).", "statements"),
    _s("METER_PAYMENT_TERMS_DAYS", "int", None, "Days from issue to the due date printed on statements (no due date when unset).", "statements", minimum=0, maximum=365),
    _s("MINIMUM_CHARGE_FEE", "usd", "0", "Least a user with any usage in the period is charged (owui-metering's name; see README).", "statements"),
    _s("METER_BASE_FEE", "usd", "0", "Flat fee on every statement with usage.", "statements"),
    _s("METER_MARKUP_PERCENT", "decimal", "0", "Markup on usage, in percent (e.g. 10 or 7.5).", "statements"),
    _s("METER_CURRENCY", "str", "USD", "Currency statements are shown in (ISO code).", "statements"),
    _s("METER_USD_RATE", "decimal", "1", "Units of METER_CURRENCY per US dollar, a fixed rate stated on each document.", "statements"),
    _s("METER_ALLOCATE_UNATTRIBUTED", "bool", False, "In the summary, share spend OpenRouter billed but no answer accounts for over users by their use.", "statements"),
    # --- operations -----------------------------------------------------------------------------
    _s("METER_BACKUP_KEEP", "int", 7, "Daily backups kept in {METER_DATA_DIR}/backups (0: no automatic backups).", "operations", minimum=0),
    _s("METER_RETENTION_DAYS", "int", 0, "Prune answers older than this many days, keeping daily totals (0: keep forever).", "operations", minimum=0),
    _s("METRICS_TOKEN", "str", None, "Bearer token /metrics requires (without one, /metrics answers only with METRICS_PUBLIC=true).", "operations", secret=True),
    _s("METRICS_PUBLIC", "bool", False, "Serve /metrics without a token (only where the port is reachable by trusted hosts alone).", "operations"),
)

BY_ENV = {s.env: s for s in SETTINGS}


class Settings:
    """Parsed settings. Attribute names are the env names: ``settings.METER_PORT``."""

    def __init__(self, values: dict, origins: dict):
        self._values = values
        self._origins = origins

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, origin: str = "set", **changes) -> "Settings":
        """A copy with some values changed (tests, generated secrets)."""
        values = dict(self._values)
        origins = dict(self._origins)
        for name, value in changes.items():
            if name not in BY_ENV:
                raise KeyError(name)
            values[name] = value
            origins[name] = origin
        return Settings(values, origins)

    def origin(self, name: str) -> str:
        """Where a value came from: env, file, default, generated or set."""
        return self._origins[name]

    def describe(self) -> list[tuple[Setting, str, str]]:
        """(setting, shown value, origin) for every setting, secrets masked."""
        rows = []
        for s in SETTINGS:
            value = self._values.get(s.env)
            if value is None:
                shown = "(unset)"
            elif s.secret:
                shown = "****"
            elif s.kind == "usd":
                shown = str(Decimal(value) / Decimal(10**9))
            else:
                shown = str(value)
            rows.append((s, shown, self._origins.get(s.env, "default")))
        return rows


def _parse(s: Setting, raw: str):
    raw = raw.strip()
    if s.kind == "str":
        return raw
    if s.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{s.env} must be a whole number, got {raw!r}") from None
        if s.minimum is not None and value < s.minimum:
            raise SettingsError(f"{s.env} must be at least {s.minimum}, got {value}")
        if s.maximum is not None and value > s.maximum:
            raise SettingsError(f"{s.env} must be at most {s.maximum}, got {value}")
        return value
    if s.kind == "bool":
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise SettingsError(f"{s.env} must be true or false, got {raw!r}")
    if s.kind == "usd":
        try:
            return parse_usd_nano(s.env, raw)
        except BadInput as exc:
            raise SettingsError(f"{exc}, got {raw!r}") from None
    if s.kind == "decimal":
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise SettingsError(f"{s.env} must be a number such as 7.5, got {raw!r}") from None
        if not value.is_finite() or value < 0:
            raise SettingsError(f"{s.env} must be a number of 0 or more, got {raw!r}")
        return value
    if s.kind == "url":
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(f"{s.env} must be an http:// or https:// URL, got {raw!r}")
        return raw.rstrip("/")
    if s.kind == "timezone":
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{s.env} must be an IANA time zone such as Europe/Berlin, got {raw!r}") from None
        return raw
    if s.kind == "choice":
        for choice in s.choices:
            if raw.lower() == choice.lower():
                return choice
        raise SettingsError(f"{s.env} must be one of {', '.join(s.choices)}, got {raw!r}")
    raise AssertionError(f"unknown setting kind {s.kind}")


# the placeholders each message may use (filled in by budgets.Budgets.block_message)
MESSAGE_PLACEHOLDERS = {
    "METER_BLOCK_MESSAGE": ("spent", "limit", "period", "renews"),
    "METER_ALLOWANCE_BLOCK_MESSAGE": ("spent", "limit"),
}


def _check_message(env: str, template: str, allowed: tuple[str, ...]) -> None:
    """A message template may use only its placeholders, plain ({spent}); {{ and }} are braces."""
    known = ", ".join("{" + name + "}" for name in allowed)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        shown = template[template.rfind("{"):][:40] if "{" in template else "}"
        raise SettingsError(f"{env} has an unclosed or stray brace near {shown!r}; use {known}, and {{{{ or }}}} for a brace") from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        placeholder = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
        if name not in allowed or spec or conversion:
            raise SettingsError(f"{env} has an unknown placeholder {placeholder}; use {known}")


def _validate(values: dict) -> None:
    for env, allowed in MESSAGE_PLACEHOLDERS.items():
        _check_message(env, values[env], allowed)
    secret = values.get("JWT_SECRET")
    if secret is not None and len(secret) < 32:
        raise SettingsError("JWT_SECRET must be at least 32 characters long")
    if values.get("API_KEY") is not None and len(values["API_KEY"]) < 16:
        raise SettingsError("API_KEY must be at least 16 characters long")
    if values.get("METER_OTLP_TOKEN") is not None and len(values["METER_OTLP_TOKEN"]) < 16:
        raise SettingsError("METER_OTLP_TOKEN must be at least 16 characters long (the endpoint faces the internet)")
    if values.get("PASSWORD_HASH") is not None and not values["PASSWORD_HASH"].startswith("$argon2"):
        raise SettingsError("PASSWORD_HASH must be an argon2 hash (make one with: owui-meter hash-password)")


def load(environ=None) -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    values, origins = {}, {}
    for s in SETTINGS:
        raw = environ.get(s.env)
        origin = "env"
        file_path = environ.get(s.env + "_FILE") if s.secret else None
        if file_path:
            if raw not in (None, ""):
                raise SettingsError(f"set either {s.env} or {s.env}_FILE, not both")
            try:
                with open(file_path, encoding="utf-8") as fh:
                    raw = fh.read().strip()
            except OSError as exc:
                raise SettingsError(f"{s.env}_FILE: cannot read {file_path}: {exc.strerror}") from None
            origin = "file"
        if raw is None or raw.strip() == "":
            value = s.default
            if s.kind == "usd" and value is not None:
                value = usd_to_nano(Decimal(str(value)))
            elif s.kind == "decimal" and value is not None:
                value = Decimal(str(value))
            values[s.env] = value
            origins[s.env] = "default"
        else:
            values[s.env] = _parse(s, raw)
            origins[s.env] = origin
    _validate(values)
    return Settings(values, origins)
