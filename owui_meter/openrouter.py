"""A small OpenRouter API client: generations, models, the key's usage, one-token test chats."""

from __future__ import annotations

import requests


class OpenRouterError(Exception):
    """OpenRouter answered with an error status (``status``), or could not be reached (None)."""

    outcome = None  # a name for /metrics; None: the status, or "unreachable"

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class MalformedReply(OpenRouterError):
    """OpenRouter answered, but not with what its API promises (not JSON, no ``data``, a cost
    that is no number). It concerns the one request, not OpenRouter as a whole."""

    outcome = "malformed"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # the HTTP-date form: fall back to our own backoff


class OpenRouter:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = requests.Session()

    @classmethod
    def from_settings(cls, settings) -> "OpenRouter":
        """The one way the meter builds its client: OPENROUTER_BASE_URL, _API_KEY, _TIMEOUT_SECONDS."""
        return cls(settings.OPENROUTER_BASE_URL, settings.OPENROUTER_API_KEY, settings.OPENROUTER_TIMEOUT_SECONDS)

    def _request(self, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = self.session.request(method, self.base_url + path, headers=headers, timeout=(self.timeout, self.timeout), **kwargs)
        except requests.Timeout:
            raise OpenRouterError(None, "OpenRouter did not answer in time") from None
        except requests.RequestException as exc:
            raise OpenRouterError(None, f"OpenRouter unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason
            raise OpenRouterError(response.status_code, f"OpenRouter {response.status_code}: {message}", _retry_after(response.headers.get("Retry-After")))
        try:
            return response.json()
        except ValueError:
            raise MalformedReply(response.status_code, "OpenRouter sent something that is not JSON") from None

    def generation(self, gen_id: str) -> dict:
        """The generation's record (``data``); MalformedReply when there is none."""
        reply = self._request("GET", "/generation", params={"id": gen_id})
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, dict):
            raise MalformedReply(200, "OpenRouter sent a generation reply without a data object")
        return data

    def models(self) -> list[dict]:
        return self._request("GET", "/models")["data"]

    def key(self) -> dict:
        return self._request("GET", "/key")["data"]

    def chat(self, model: str, messages: list[dict], max_tokens: int = 1) -> dict:
        return self._request("POST", "/chat/completions", json={"model": model, "messages": messages, "max_tokens": max_tokens})
