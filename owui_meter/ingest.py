"""Plugin payloads -> ledger inputs, checking every field.

A bad field raises :class:`BadInput` naming it; the API turns that into a 400. Inside ``usage``
the meter is lenient on purpose: Open WebUI 0.6–0.12 and its providers shape it in several ways,
and an odd usage object must never cost us the answer itself.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from . import clock
from .errors import BadInput
from .ledger import UNATTRIBUTED, NewEvent, UserInfo, is_unattributed
from .money import usd_to_nano

MAX_ID = 256
# no single answer costs a million dollars: a larger figure is garbage, and would overflow the
# ledger's 64-bit sums
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


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return max(0, int(value))


def _first(*values) -> int:
    for value in values:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value > 0:
            return int(value)
    return 0


def parse_usage(usage) -> dict:
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
    cost = usage.get("cost")
    if cost is None:
        cost = cost_details.get("total_cost")
    # Bring your own key: ``cost`` is only OpenRouter's fee; the provider's charge is the upstream
    # cost. Without is_byok the upstream cost is OpenRouter's own (already in ``cost``): not added.
    byok = usage.get("is_byok") is True
    return {
        "prompt_tokens": _first(usage.get("prompt_tokens"), usage.get("input_tokens"), usage.get("prompt_eval_count")),
        "completion_tokens": _first(usage.get("completion_tokens"), usage.get("output_tokens"), usage.get("eval_count")),
        "reasoning_tokens": _first(completion_details.get("reasoning_tokens"), usage.get("reasoning_tokens")),
        "cached_tokens": _first(prompt_details.get("cached_tokens"), usage.get("cache_read_input_tokens"), usage.get("cached_tokens")),
        "cost_nano": _amount(cost),
        "byok": byok,
        "provider_nano": _amount(cost_details.get("upstream_inference_cost")) if byok else None,
    }


def _amount(value) -> int | None:
    """A plausible USD amount in nano-USD, or None for anything else (leniently: it is usage)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        nano = usd_to_nano(value)
    except ValueError:
        return None
    return nano if 0 <= nano <= MAX_ANSWER_COST_NANO else None


def _timestamp_ms(value, received_ms: int) -> int:
    """The answer's time: the plugin's when plausible, else when the meter received it."""
    if value is None:
        return received_ms
    if isinstance(value, bool):
        raise BadInput("timestamp must be unix seconds or an ISO 8601 string")
    if isinstance(value, (int, float)):
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
        return received_ms
    return ms


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


def parse_outlet(body) -> NewEvent:
    body = _require_object(body)
    received = clock.now_ms()
    chat_id = _text(body, "chat_id")
    message_id = _text(body, "message_id")
    usage = parse_usage(body.get("usage"))
    return NewEvent(
        key=_text(body, "key", required=True),
        user=parse_user(body),
        model=_text(body, "model", required=True, max_len=512),
        base_model=_text(body, "base_model", max_len=512),
        chat_id=chat_id,
        message_id=message_id,
        session_id=_text(body, "session_id"),
        source=_source(body, chat_id, message_id),
        ts=_timestamp_ms(body.get("timestamp"), received),
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        reasoning_tokens=usage["reasoning_tokens"],
        cached_tokens=usage["cached_tokens"],
        inline_cost_nano=usage["cost_nano"],
        byok=usage["byok"],
        inline_provider_nano=usage["provider_nano"],
        generation_ids=_generation_ids(body),
    )


def parse_metering_record(body) -> NewEvent:
    """owui-metering's filter payload: ``{"user": {...}, "activity": {...}}``."""
    body = _require_object(body)
    user = parse_user(body)
    activity = _require_object(body.get("activity"), "activity")
    received = clock.now_ms()
    key = _text(activity, "id", where="activity.") or f"owui-metering-{uuid.uuid4()}"
    cost = activity.get("cost")
    cost_nano = None
    if cost is not None:
        try:
            cost_nano = usd_to_nano(cost)
        except ValueError:
            raise BadInput("activity.cost must be a number") from None
        if not 0 <= cost_nano <= MAX_ANSWER_COST_NANO:
            raise BadInput("activity.cost must be an amount from 0 to 1000000 USD")
    return NewEvent(
        key=key,
        user=user,
        model=_text(activity, "model", required=True, where="activity.", max_len=512),
        source="ui",
        ts=_timestamp_ms(activity.get("timestamp"), received),
        prompt_tokens=_count(activity.get("prompt_token")),
        completion_tokens=_count(activity.get("completion_token")),
        reasoning_tokens=_count(activity.get("reasoning_token")),
        cached_tokens=_count(activity.get("cached_tokens")),
        inline_cost_nano=cost_nano,
    )
