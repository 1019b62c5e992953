"""Deferring model calls to provider batches: in batch mode a model call whose answer is not
cached hands its request to a `BatchQueue` and raises `Deferred`; once every task is blocked on
a deferred call, `BatchQueue.submit()` creates the batches (recorded in DIR/batches.jsonl,
generator/batch_ledger.py) and the process may exit. generator/batch.py collects the answers.

The cache key of a request is its custom_id, so a result matches exactly one request. Requests
in a batch not yet collected are "in flight": deferring them again is ignored, so a rerun
before `collect` never pays twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from generator.backends.base import (
    Backend,
    BatchBackend,
    BatchInfo,
    Request,
    batch_line_bytes,
    safe_url,
)
from generator.batch_ledger import Ledger, now, provider_fields, resolved
from generator.errors import (
    BackendError,
    ConfigError,
    ConnectionFailed,
    Malformed,
    RateLimited,
    ServerError,
    Timeout,
    TransientError,
)
from generator.retry import call_provider
from generator.rundir import RunDir

# The strictest documented custom_id format (Anthropic's); cache keys are 32 hex digits.
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


class Deferred(Exception):
    """The answer will come from a provider batch."""


def _create_retryable(exc: TransientError) -> bool:
    """Creating a batch is not idempotent: a timeout may hide a batch that was created after
    all, and retrying would pay twice. Only answers that say nothing was created are retried
    (429, 503, and Anthropic's 529 overloaded)."""
    return isinstance(exc, RateLimited) or (
        isinstance(exc, ServerError) and exc.status in (503, 529)
    )


class BatchQueue:
    """Requests deferred during a run, submitted as provider batches when the run has walked
    every task as far as it can."""

    def __init__(self, rundir: RunDir, backend: Backend) -> None:
        if not backend.capabilities.batch_api:
            raise ConfigError("--batch needs --provider openai or anthropic")
        self.rundir = rundir
        self.backend: BatchBackend = backend  # type: ignore[assignment]  # batch_api says so
        self._ledger = Ledger(rundir)
        self._in_flight = self._ledger.in_flight()
        self._pending: dict[str, Request] = {}
        self._waiting: set[str] = set()

    def defer(self, key: str, request: Request) -> None:
        """Remember a request to submit. A key already pending, or in a batch not yet
        collected, is ignored: its answer is already on its way."""
        if not CUSTOM_ID.fullmatch(key):
            raise ValueError(f"cache key {key!r} is not a valid batch custom_id")
        if key in self._in_flight:
            self._waiting.add(key)
            return
        self._pending.setdefault(key, request)

    def pending(self) -> int:
        """Requests deferred in this process and not yet submitted."""
        return len(self._pending)

    def waiting(self) -> int:
        """Requests deferred in this process whose answers are already in submitted batches
        (collect them with `archetypes batch collect DIR`)."""
        return len(self._waiting)

    async def submit(self) -> list[BatchInfo]:
        """Create batches for every pending request, split by the provider's request-count and
        byte limits, and record each one as soon as it exists."""
        if not self._pending:
            return []
        entries = [
            (key, request, self.backend.batch_request(request, key))
            for key, request in self._pending.items()
        ]
        created: list[BatchInfo] = []
        for chunk in split(
            entries,
            max_requests=self.backend.batch_max_requests,
            max_bytes=self.backend.batch_max_bytes,
            size=lambda entry: len(batch_line_bytes(entry[2])),
        ):
            requests = {key: {"task_id": r.task_id, "step": r.step} for key, r, _ in chunk}
            info = await self._create(requests, [line for _, _, line in chunk])
            for key in requests:
                self._pending.pop(key, None)
                self._in_flight.add(key)
            created.append(info)
        return created

    async def _create(self, requests: dict[str, dict[str, str]], lines: list[dict]) -> BatchInfo:
        """Create one batch, written ahead: the submission is recorded before the provider is
        asked, so a process that dies after the provider created the batch but before the
        batch was recorded leaves a trace; the next `batch status` or `collect` finds that
        batch by its tag (OpenAI) instead of the run paying for its requests twice."""
        submission = uuid.uuid4().hex
        record_id = f"submission-{submission}"
        where = {
            "provider": self.backend.provider,
            "model": self.backend.model,
            "base_url": safe_url(self.backend.base_url),
        }
        self._ledger.write(
            "submitting",
            {
                "id": record_id,
                "submission_record": True,
                "submission": submission,
                **where,
                "status": "submitting",
                "created_at": now(),
                "requests": requests,
                "collected": False,
            },
        )
        unanswered = False

        async def create() -> BatchInfo:
            nonlocal unanswered
            try:
                return await self.backend.batch_create(lines, submission)
            except TransientError as exc:
                # No answer, or one we could not read: the batch may exist all the same.
                unanswered = isinstance(exc, Timeout | ConnectionFailed | Malformed)
                raise

        try:
            info = await call_provider(create, retryable=_create_retryable)
        except Exception:
            if not unanswered:  # the provider said no: there is nothing to find later
                self._ledger.write("not-submitted", resolved(record_id, "not-submitted"))
            # else the record stays open for `batch status`/`collect` to find or give back
            raise
        self._ledger.write(
            "created",
            {
                "id": info.id,
                "submission": submission,
                **where,
                "created_at": info.created_at or now(),
                **provider_fields(info),
                "requests": requests,
                "collected": False,
            },
        )
        self._ledger.write("submitted", resolved(record_id, "submitted", info.id))
        return self._ledger.info(info.id)


def split(
    items: Sequence[Any], *, max_requests: int, max_bytes: int, size: Any
) -> Iterable[list[Any]]:
    """Consecutive chunks of at most `max_requests` items and `max_bytes` bytes (by `size`)."""
    chunk: list[Any] = []
    used = 0
    for item in items:
        n = size(item)
        if n > max_bytes:
            raise BackendError(
                f"one batch request is {n} bytes, over the provider's {max_bytes}-byte batch limit"
            )
        if chunk and (len(chunk) >= max_requests or used + n > max_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += n
    if chunk:
        yield chunk
