"""What a provider's HTTP error answer means to the tool: how long it asked to wait
(`parse_retry_after`) and which provider error it is (`classify_status`). One reading for every
backend that speaks HTTP, so the OpenAI and Anthropic backends cannot drift apart.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from generator.errors import (
    AuthError,
    NotFound,
    ProviderError,
    RateLimited,
    Rejected,
    ServerError,
)

# The longest server-directed wait honoured: the OpenAI SDK's MAX_RETRY_AFTER_DELAY (two
# minutes; the Anthropic SDK has none). A longer ask (a quota that resets in hours) is waited in
# steps of this and the retry budget decides when the task is given up, so one header cannot
# park a run for hours; a nonsense value (1e300) cannot overflow a sleep.
MAX_RETRY_AFTER = 120.0


def utc_now() -> datetime:
    """The clock an HTTP-date Retry-After is measured against (tests replace it)."""
    return datetime.now(UTC)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds an error response asked the client to wait, or None when it did not say.

    Read as the OpenAI and Anthropic SDKs read it: `retry-after-ms` (milliseconds, which OpenAI
    sends) wins, then `retry-after` as delta-seconds (decimals allowed), then `retry-after` as
    an HTTP date (RFC 9110 IMF-fixdate) measured from `now` (aware; default `utc_now()`).
    Clamped to [0, MAX_RETRY_AFTER]: a date already past means "retry now".
    """
    seconds = _retry_after_seconds(headers, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _retry_after_seconds(headers: Mapping[str, str], now: datetime | None) -> float | None:
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * unit
            except ValueError:
                continue  # not a number: the next header, or the date form
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except ValueError:  # neither a number nor a date: as if absent
        return None
    if moment.tzinfo is None:  # "-0000": a UTC time whose source zone is unknown (RFC 5322)
        moment = moment.replace(tzinfo=UTC)
    return (moment - (now or utc_now())).total_seconds()


def classify_status(
    status: int,
    headers: Mapping[str, str],
    detail: str,
    *,
    key_env: str,
    not_found_hint: str,
) -> ProviderError:
    """The provider error for an HTTP error status. `key_env` names the variable holding the
    key (said on a 401/403), `not_found_hint` what to check on a 404, `detail` the provider's
    own message (said on any other refusal)."""
    retry_after = parse_retry_after(headers)
    if status == 429:
        return RateLimited("rate limited (429)", retry_after)
    # Retried as both SDKs retry (openai-python's and anthropic-sdk-python's `_should_retry`):
    # 408 request timeout, 409 lock conflict, and every 5xx (Anthropic's 529 overloaded too).
    if status in (408, 409) or status >= 500:
        return ServerError(status, f"server error ({status})", retry_after)
    if status in (401, 403):
        return AuthError(f"the provider refused the credentials ({status}): check {key_env}")
    if status == 404:
        return NotFound(f"not found ({status}): {not_found_hint}")
    return Rejected(f"the provider rejected the request ({status}): {detail[:300]}")


def batch_status_error(
    what: str, status: int, headers: Mapping[str, str], detail: str, *, key_env: str
) -> ProviderError:
    """The provider error for an HTTP error status of a batch API call (`what`: what the call
    was doing). A 404 there means the batch or file is gone, not that the model is wrong."""
    if status == 404:
        return NotFound(f"could not {what}: not found (404): {detail[:300]}")
    error = classify_status(status, headers, detail, key_env=key_env, not_found_hint="")
    return Rejected(f"could not {what}: {error}") if isinstance(error, Rejected) else error
