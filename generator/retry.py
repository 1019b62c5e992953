"""The one transport retry policy, for model calls (generator/calls.py) and batch API calls
(generator/batch_queue.py, generator/batch.py) alike.

Written down: a transient provider error (generator/errors.py: 429, 408/409/5xx, timeouts,
dropped connections, malformed or empty answers) is retried up to `attempts` tries in all. The
wait before the next try is the provider's retry-after when it sent one (already capped at
MAX_RETRY_AFTER, generator/backends/http.py) plus up to RETRY_AFTER_JITTER, so the callers one
429 told the same moment do not all come back in the same instant; otherwise exponential
backoff from `base_seconds`, doubling, capped at `cap_seconds`, each scaled by a random factor
in [0.5, 1] (jitter). Permanent errors are never retried. The SDK clients have their own
retries off, so the two never multiply. Content retries (re-asking with what was wrong) are
not this policy's business: they live in the worker.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from generator.errors import (
    ArchetypeCorpusError,
    AuthError,
    BackendError,
    ConfigError,
    PermanentError,
    TransientError,
)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# Added at most to a server's retry-after; small next to any wait a provider asks for.
RETRY_AFTER_JITTER = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient provider errors (see the module's text)."""

    attempts: int  # tries in all, the first included
    base_seconds: float  # the first backoff without a retry-after, before jitter
    cap_seconds: float = 30.0  # the longest backoff without a retry-after

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after try number `attempt` (from 1) failed."""
        if retry_after is not None:
            return retry_after + random.uniform(0, RETRY_AFTER_JITTER)
        ceiling = min(self.base_seconds * 2 ** (attempt - 1), self.cap_seconds)
        return float(ceiling * random.uniform(0.5, 1.0))

    def retrying(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        retryable: Callable[[TransientError], bool] | None = None,
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """The tenacity loop of this policy: transient errors (those `retryable` accepts, if
        given) are retried, anything else, and the last failure, is raised as it is."""

        def worth_retrying(exc: BaseException) -> bool:
            if not isinstance(exc, TransientError):
                return False
            return retryable is None or retryable(exc)

        return AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return self.backoff(state.attempt_number, retry_after)


# Model calls: ModelCaller's max_retries (6) retries after the first try.
CALL_POLICY = RetryPolicy(attempts=7, base_seconds=0.5)
# Batch API management calls (create, status, results, cancel).
BATCH_POLICY = RetryPolicy(attempts=5, base_seconds=1.0)


def gave_up(exc: TransientError, attempts: int) -> BackendError:
    """A transient error the policy stopped retrying, as the error the user sees."""
    return BackendError(f"{exc} (after {attempts} attempt{'s' if attempts > 1 else ''})")


def final_error(exc: PermanentError) -> ArchetypeCorpusError:
    """A permanent provider error as the user sees it: a refused key is something the user
    fixes (ConfigError, exit 2); anything else is the provider's (BackendError)."""
    return ConfigError(str(exc)) if isinstance(exc, AuthError) else BackendError(str(exc))


async def call_provider(
    make: Callable[[], Awaitable[T]],
    retryable: Callable[[TransientError], bool] | None = None,
    sleep: Sleep | None = None,
) -> T:
    """Await `make()` under BATCH_POLICY (read when called, so tests can shorten it), retrying
    transient provider errors (all of them, or those `retryable` accepts); provider errors end
    as BackendError or ConfigError."""
    retrying = BATCH_POLICY.retrying(sleep=sleep or asyncio.sleep, retryable=retryable)
    try:
        async for attempt in retrying:
            with attempt:
                return await make()
    except TransientError as exc:
        raise gave_up(exc, retrying.statistics.get("attempt_number", 1)) from None
    except PermanentError as exc:
        raise final_error(exc) from None
    raise AssertionError("unreachable: tenacity reraises")
