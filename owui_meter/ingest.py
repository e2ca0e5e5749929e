"""Plugin payloads -> ledger inputs, checking every field.

A bad field raises :class:`BadInput` naming it; the API turns that into a 400. Inside ``usage``
the meter is lenient on purpose: Open WebUI 0.6–0.12 and its providers shape it in several ways,
and an odd usage object must never cost us the answer itself.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation

from . import clock
from .errors import BadInput
from .ledger import UNATTRIBUTED, NewEvent, UserInfo, is_unattributed
from .money import NANO, usd_to_nano

MAX_ID = 256
MAX_TOKENS = 100_000_000  # per count per answer: far above any model's window, far below an overflow
DEFAULT_MAX_COST_NANO = 1000 * 10**9  # METER_MAX_ANSWER_USD's default
# what OpenRouter's own records may say one generation cost before they count as garbage (and
# would overflow the ledger's 64-bit sums): no single answer costs a million dollars
MAX_ANSWER_COST_NANO = 10**15
MAX_GENERATION_IDS = 200
GENERATION_ID = re.compile(r"^gen-[A-Za-z0-9_.:-]{1,200}$")
# client clocks are trusted within these bounds; outside them the meter's receive time is used
MAX_PAST_MS = 7 * 24 * 3600 * 1000
MAX_FUTURE_MS = 5 * 60 * 1000


def _require_object(body, what="body"):
    if not isinstance(body, dict):
        raise BadInput(f"{what} must be a JSON object")
    return body


def _text(obj, name, *, required=False, where="", max_len=MAX_ID):
    value = obj.get(name)
    label = f"{where}{name}"
    if value is None or (value == "" and not required):
        if required:
            raise BadInput(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise BadInput(f"{label} must be a string")
    if required and not value.strip():
        raise BadInput(f"{label} must not be empty")
    if len(value) > max_len:
        raise BadInput(f"{label} must be at most {max_len} characters")
    return value


def parse_user(body) -> UserInfo:
    user = _require_object(body.get("user"), "user")
    user_id = _text(user, "id", required=True, where="user.")
    if is_unattributed(user_id):  # the ledger's name for spend of no user; no one may post as it
        raise BadInput(f"user.id '{UNATTRIBUTED}' is reserved")
    return UserInfo(
        id=user_id,
        email=_text(user, "email", where="user."),
        name=_text(user, "name", where="user."),
        role=_text(user, "role", where="user.", max_len=64),
    )


def _source(body, chat_id, message_id) -> str:
    source = body.get("source")
    if source is None:
        # Open WebUI gives API calls an empty chat id and no message id
        return "ui" if chat_id else "api"
    if source not in ("ui", "api"):
        raise BadInput("source must be 'ui' or 'api'")
    return source


def parse_inlet(body) -> dict:
    body = _require_object(body)
    chat_id = _text(body, "chat_id")
    message_id = _text(body, "message_id")
    return {
        "user": parse_user(body),
        "model": _text(body, "model", max_len=512),
        "chat_id": chat_id,
        "message_id": message_id,
        "session_id": _text(body, "session_id"),
        "source": _source(body, chat_id, message_id),
    }


def _tokens(label: str, value) -> int:
    """A token count: 0 when it is not a number at all (usage shapes vary), refused when it is a
    number no answer can have (negative, not finite, more than MAX_TOKENS)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if value != value or value in (float("inf"), float("-inf")):
        raise BadInput(f"{label} must be a finite number")
    if value < 0:
        raise BadInput(f"{label} must not be negative")
    if value > MAX_TOKENS:
        raise BadInput(f"{label} must be at most {MAX_TOKENS:,} tokens")
    return int(value)


def _first(*named) -> int:
    """The first positive count of (label, value) pairs; every one given must be plausible."""
    counts = [_tokens(label, value) for label, value in named]
    return next((count for count in counts if count > 0), 0)


def _cost_nano(label: str, value, max_cost_nano: int) -> int | None:
    """An answer's cost in nano-USD; None when none was given or it is no amount at all (text).
    A number that no answer can cost (negative, not finite, above the limit) is refused."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite():
        if isinstance(value, str):
            return None
        raise BadInput(f"{label} must be a finite number")
    if amount < 0:
        raise BadInput(f"{label} must not be negative")
    if amount > Decimal(max_cost_nano) / NANO:  # compared in dollars: 1e999999 × 1e9 would overflow
        raise BadInput(f"{label} must be at most ${max_cost_nano // NANO:,} for one answer (METER_MAX_ANSWER_USD)")
    return usd_to_nano(amount)


def parse_usage(usage, max_cost_nano: int = DEFAULT_MAX_COST_NANO) -> dict:
    """Tokens and cost from any usage shape Open WebUI has passed through.

    OpenAI/OpenRouter: prompt_tokens, completion_tokens, *_tokens_details, cost.
    Open WebUI's additions / Responses API: input_tokens, output_tokens, *_tokens_details.
    Anthropic-style: cache_read_input_tokens. Ollama: prompt_eval_count, eval_count.
    """
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "cost_nano": None,
                "byok": False, "provider_nano": None}
    if not isinstance(usage, dict):
        raise BadInput("usage must be a JSON object or null")

    def details(*names):
        for name in names:
            value = usage.get(name)
            if isinstance(value, dict):
                return value
        return {}

    prompt_details = details("prompt_tokens_details", "input_tokens_details")
    completion_details = details("completion_tokens_details", "output_tokens_details")
    cost_details = usage.get("cost_details") if isinstance(usage.get("cost_details"), dict) else {}
    cost, cost_label = usage.get("cost"), "usage.cost"
    if cost is None:
        cost, cost_label = cost_details.get("total_cost"), "usage.cost_details.total_cost"
    # Bring your own key: ``cost`` is only OpenRouter's fee; the provider's charge is the upstream
    # cost. Without is_byok the upstream cost is OpenRouter's own (already in ``cost``): not added.
    byok = usage.get("is_byok") is True

    def counts(*names):
        return _first(*((f"usage.{name}", source.get(key)) for name, source, key in names))

    return {
        "prompt_tokens": counts(("prompt_tokens", usage, "prompt_tokens"), ("input_tokens", usage, "input_tokens"),
                                ("prompt_eval_count", usage, "prompt_eval_count")),
        "completion_tokens": counts(("completion_tokens", usage, "completion_tokens"), ("output_tokens", usage, "output_tokens"),
                                    ("eval_count", usage, "eval_count")),
        "reasoning_tokens": counts(("completion_tokens_details.reasoning_tokens", completion_details, "reasoning_tokens"),
                                   ("reasoning_tokens", usage, "reasoning_tokens")),
        "cached_tokens": counts(("prompt_tokens_details.cached_tokens", prompt_details, "cached_tokens"),
                                ("cache_read_input_tokens", usage, "cache_read_input_tokens"), ("cached_tokens", usage, "cached_tokens")),
        "cost_nano": _cost_nano(cost_label, cost, max_cost_nano),
        "byok": byok,
        "provider_nano": _cost_nano("usage.cost_details.upstream_inference_cost", cost_details.get("upstream_inference_cost"),
                                    max_cost_nano) if byok else None,
    }


def _timestamp_ms(value, received_ms: int) -> tuple[int, bool]:
    """The answer's time, and whether it was adjusted: the plugin's time when plausible (an answer
    that waited in the plugin's queue keeps its own), else when the meter received it."""
    if value is None:
        return received_ms, False
    if isinstance(value, bool):
        raise BadInput("timestamp must be unix seconds or an ISO 8601 string")
    if isinstance(value, (int, float)):
        if not -1e15 < value < 1e15:  # no time anyone bills on, and 1e308 * 1000 would not even be a number
            return received_ms, True
        ms = int(value * 1000) if value < 1e11 else int(value)  # seconds, or already ms
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput("timestamp must be unix seconds or an ISO 8601 string") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        ms = int(parsed.timestamp() * 1000)
    else:
        raise BadInput("timestamp must be unix seconds or an ISO 8601 string")
    if not received_ms - MAX_PAST_MS <= ms <= received_ms + MAX_FUTURE_MS:
        return received_ms, True  # a wrong clock, or an answer kept too long: not a date to bill on
    return ms, False


def _generation_ids(body) -> list[str]:
    ids = body.get("generation_ids")
    if ids is None:
        return []
    if not isinstance(ids, list):
        raise BadInput("generation_ids must be a list of strings")
    if len(ids) > MAX_GENERATION_IDS:
        raise BadInput(f"generation_ids must hold at most {MAX_GENERATION_IDS} ids")
    seen = []
    for item in ids:
        if not isinstance(item, str) or not GENERATION_ID.match(item):
            raise BadInput("generation_ids must hold OpenRouter ids like 'gen-…'")
        if item not in seen:
            seen.append(item)
    return seen


def parse_outlet(body, max_cost_nano: int = DEFAULT_MAX_COST_NANO) -> NewEvent:
    body = _require_object(body)
    received = clock.now_ms()
    chat_id = _text(body, "chat_id")
    message_id = _text(body, "message_id")
    usage = parse_usage(body.get("usage"), max_cost_nano)
    ts, adjusted = _timestamp_ms(body.get("timestamp"), received)
    return NewEvent(
        key=_text(body, "key", required=True),
        user=parse_user(body),
        model=_text(body, "model", required=True, max_len=512),
        base_model=_text(body, "base_model", max_len=512),
        chat_id=chat_id,
        message_id=message_id,
        session_id=_text(body, "session_id"),
        source=_source(body, chat_id, message_id),
        ts=ts,
        received=received,
        timestamp_adjusted=adjusted,
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        reasoning_tokens=usage["reasoning_tokens"],
        cached_tokens=usage["cached_tokens"],
        inline_cost_nano=usage["cost_nano"],
        byok=usage["byok"],
        inline_provider_nano=usage["provider_nano"],
        generation_ids=_generation_ids(body),
    )


def parse_metering_record(body, max_cost_nano: int = DEFAULT_MAX_COST_NANO) -> NewEvent:
    """owui-metering's filter payload: ``{"user": {...}, "activity": {...}}``."""
    body = _require_object(body)
    user = parse_user(body)
    activity = _require_object(body.get("activity"), "activity")
    received = clock.now_ms()
    key = _text(activity, "id", where="activity.") or f"owui-metering-{uuid.uuid4()}"
    cost_nano = _cost_nano("activity.cost", activity.get("cost"), max_cost_nano)
    if cost_nano is None and activity.get("cost") is not None:
        raise BadInput("activity.cost must be a number")
    return NewEvent(
        key=key,
        user=user,
        model=_text(activity, "model", required=True, where="activity.", max_len=512),
        source="ui",
        ts=_timestamp_ms(activity.get("timestamp"), received)[0],
        received=received,
        prompt_tokens=_tokens("activity.prompt_token", activity.get("prompt_token")),
        completion_tokens=_tokens("activity.completion_token", activity.get("completion_token")),
        reasoning_tokens=_tokens("activity.reasoning_token", activity.get("reasoning_token")),
        cached_tokens=_tokens("activity.cached_tokens", activity.get("cached_tokens")),
        inline_cost_nano=cost_nano,
    )
