"""Reading the providers' HTTP answers (generator/backends/http.py): the retry-after header in
each form the providers use, and the one status classifier.

Dates are measured against a clock fixed to the fake clock's start, so no test sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from generator.backends import http
from generator.backends.http import MAX_RETRY_AFTER, classify_status, parse_retry_after
from generator.errors import TransientError
from tests.support.clock import FakeClock

# The moment the fake clock starts (FakeClock.now == 1000.0): the cassettes' dates are after it.
START = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for the retry loop, the pacer and HTTP dates (START at 1000.0)."""
    fake = FakeClock()
    monkeypatch.setattr(http, "utc_now", lambda: START + timedelta(seconds=fake.now - 1000.0))
    return fake


# -- reading the headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),  # not in RFC 9110, but sent, and the SDKs honour it
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),  # milliseconds win, as in the SDK
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "Sun, 22 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Sun, 22 Nov 2026 12:00:30 -0000"}, 30.0),
        ({"retry-after": "Sun, 22 Nov 2026 11:59:00 GMT"}, 0.0),  # already past: retry now
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after-ms": "-10"}, 0.0),
        ({"retry-after": "86400"}, MAX_RETRY_AFTER),
        ({"retry-after": "Mon, 23 Nov 2026 12:00:00 GMT"}, MAX_RETRY_AFTER),
        ({"retry-after": "1e400"}, MAX_RETRY_AFTER),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers, now=START) == seconds


@pytest.mark.parametrize(
    "headers",
    [{}, {"retry-after": ""}, {"retry-after": "soon"}, {"retry-after": "nan"}, {"x-other": "7"}],
)
def test_no_usable_retry_after_is_absent(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, now=START) is None


def test_dates_are_measured_against_utc_now_by_default(clock: FakeClock) -> None:
    headers = {"retry-after": "Sun, 22 Nov 2026 12:00:45 GMT"}
    assert parse_retry_after(headers) == 45.0
    clock.now += 40.0
    assert parse_retry_after(headers) == 5.0


# -- the one status classifier -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (429, "429", True),
        (408, "408", True),
        (409, "409", True),  # both SDKs retry a lock conflict
        (500, "500", True),
        (529, "529", True),  # Anthropic's overloaded
        (401, "auth", False),
        (403, "auth", False),
        (404, "not-found", False),
        (400, "rejected", False),
    ],
)
def test_one_classifier_for_every_provider(status: int, kind: str, transient: bool) -> None:
    error = classify_status(
        status, {"retry-after": "3"}, "bad", key_env="SOME_KEY", not_found_hint="check --model"
    )
    assert error.kind == kind and isinstance(error, TransientError) == transient
    if transient:
        assert error.retry_after == 3.0  # type: ignore[attr-defined]
    if status == 401:
        assert "SOME_KEY" in str(error) and error.fatal  # type: ignore[attr-defined]
