"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches): half price, answers within 24h.

Batch mode fills the same response cache that synchronous calls fill, so the run stays the one
source of flow. In batch mode a model call whose answer is not cached is *deferred*: the caller
hands the request to a `BatchQueue` and raises `Deferred`; once every task is blocked on a
deferred call, `BatchQueue.submit()` creates the batches and the process may exit. Later,
`collect()` downloads the results into cache.jsonl, and rerunning `generate` replays them,
advances each task by one step and defers that step's requests into new batches.

The cache key of a request is its custom_id, so a result matches exactly one request and can
never be counted twice: a result whose key is already cached is skipped. Results are matched by
custom_id only, never by position (providers return them in any order); a result for a custom_id
the batch never held is counted as `unexpected` and ignored, a second one for the same custom_id
as a `duplicate` (the first counts). A result that failed, expired, was canceled or is missing is
simply not cached, so the next run defers it again.

Submitted batches are recorded in DIR/batches.jsonl, one JSON object per line, folded by `id`
(later lines update earlier ones):

    {"event": "created", "id", "provider", "model", "base_url", "created_at", "status",
     "ended", "request_counts", "output_file_id", "error_file_id", "results_url", "errors",
     "requests": {custom_id: {"task_id", "step"}}, "collected": false}
    {"event": "updated", "id", "status", "ended", "request_counts", ...}
    {"event": "collected", "id", "collected": true, "collected_at", "summary": {...}}

Requests in a batch not yet collected are "in flight": deferring them again is ignored, so a
rerun before `collect` never pays twice. No secrets are written: keys come from the
environment when a backend is rebuilt from a record.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from generator.backends.base import (
    Backend,
    BackendConfig,
    Completion,
    PermanentError,
    TransientError,
    create_backend,
    safe_url,
)
from generator.errors import BackendError, ConfigError
from generator.pricing import Price, load_prices
from generator.prompts import Request
from generator.rundir import BATCHES, CACHE, RunDir

BATCH_PROVIDERS = ("openai", "anthropic")
# The strictest documented custom_id format (Anthropic's); cache keys are 32 hex digits.
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Provider management calls (create, status, results, cancel) are retried this many times.
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 1.0
# Creating a batch is not idempotent: a timeout may hide a batch that was created after all,
# and retrying would pay twice. Only answers that say nothing was created are retried.
_CREATE_RETRYABLE = {"429", "503", "529"}

BatchOutcome = Literal["succeeded", "errored", "expired", "canceled"]


class Deferred(Exception):
    """The answer will come from a provider batch."""


class BatchCounts(BaseModel):
    """What `collect` found in a batch's results, by outcome; kept in the ledger per batch,
    shown by `batch status`, and summed over the run into the manifest's `batch` section."""

    model_config = ConfigDict(frozen=True)

    succeeded: int = 0  # answers written to cache.jsonl
    already_cached: int = 0  # answers whose key was already cached (never counted twice)
    errored: int = 0
    expired: int = 0
    canceled: int = 0  # not run because the batch was canceled (OpenAI: batch_cancelled)
    missing: int = 0  # submitted, but absent from the results
    unexpected: int = 0  # results for custom ids the batch never held: ignored
    duplicates: int = 0  # further results for a custom id already read: ignored, first wins

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in BatchCounts.model_fields
            }
        )

    def words(self) -> str:
        """The non-zero counts, as `batch status` prints them ("succeeded 3, canceled 1")."""
        labels = {"unexpected": "unknown ids ignored", "duplicates": "duplicates ignored"}
        return ", ".join(
            f"{labels.get(name, name.replace('_', ' '))} {getattr(self, name)}"
            for name in BatchCounts.model_fields
            if getattr(self, name)
        )


class BatchTotals(BaseModel):
    """The manifest's `batch` section: the run's batches and what collecting them found."""

    model_config = ConfigDict(frozen=True)

    batches: int  # provider batches submitted from this run
    collected: int  # of which collected
    results: BatchCounts  # summed over the collected ones

    def __add__(self, other: BatchTotals) -> BatchTotals:
        """Two shards' sections as one (merge)."""
        return BatchTotals(
            batches=self.batches + other.batches,
            collected=self.collected + other.collected,
            results=self.results + other.results,
        )


class BatchInfo(BaseModel):
    """One provider batch as the provider last described it, plus what this run knows of it."""

    model_config = ConfigDict(frozen=True)

    id: str
    provider: str
    model: str = ""
    status: str  # the provider's own word (OpenAI: validating ... completed; Anthropic: ended)
    ended: bool = False  # processing is over: whatever results exist can be collected
    created_at: str = ""
    request_counts: dict[str, int] = Field(default_factory=dict)  # the provider's tallies
    output_file_id: str | None = None  # OpenAI
    error_file_id: str | None = None  # OpenAI
    results_url: str | None = None  # Anthropic
    errors: list[str] = Field(default_factory=list)  # batch-level errors (a failed validation)
    requests: int = 0  # how many requests this run put in it
    collected: bool = False
    collected_at: str | None = None
    summary: BatchCounts | None = None  # what `collect` found in it


@dataclass(frozen=True)
class BatchResult:
    """One result line, provider-neutral. `body` is the response body of a succeeded request."""

    custom_id: str
    outcome: BatchOutcome
    body: dict[str, Any] | None = None
    error: str | None = None


class BatchBackend(Backend, Protocol):
    """A backend that can also speak its provider's batch API."""

    batch_max_requests: int
    batch_max_bytes: int

    def batch_request(self, request: Request, custom_id: str) -> dict[str, Any]: ...

    def parse_batch_result(self, body: dict[str, Any]) -> Completion: ...

    async def batch_create(self, lines: Sequence[dict[str, Any]], submission: str) -> BatchInfo:
        """Create a batch, tagged with `submission` where the provider keeps tags."""
        ...

    async def batch_find(self, submission: str, since: str) -> BatchInfo | None:
        """The batch created under `submission` (at or after `since`), if the provider can
        tell; None when it has none, or cannot search."""
        ...

    async def batch_get(self, batch_id: str) -> BatchInfo: ...

    async def batch_cancel(self, batch_id: str) -> BatchInfo: ...

    def batch_results(self, info: BatchInfo) -> AsyncIterator[BatchResult]: ...


@dataclass
class CollectSummary:
    """What one `collect` found, over every batch it looked at."""

    batches_collected: int = 0
    batches_running: int = 0  # not ended yet: collect again later
    succeeded: int = 0  # answers newly written to cache.jsonl
    already_cached: int = 0  # answers whose key was already cached (never counted twice)
    errored: int = 0
    expired: int = 0
    canceled: int = 0
    missing: int = 0  # submitted, but absent from the results
    unexpected: int = 0  # results for custom ids their batch never held (ignored)
    duplicates: int = 0  # further results for a custom id already read (ignored)
    cost_usd: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    # batch id -> its results for custom ids it never held, for the one warning
    unexpected_by_batch: dict[str, int] = field(default_factory=dict)

    @property
    def retry(self) -> int:
        """Requests the next `generate` run will defer again."""
        return self.errored + self.expired + self.canceled + self.missing

    def line(self) -> str:
        parts = [
            f"{self.batches_collected} batch(es) collected",
            f"{self.succeeded} answers cached (${self.cost_usd:.4f})",
        ]
        if self.already_cached:
            parts.append(f"{self.already_cached} already cached")
        failed = [
            f"{n} {name}"
            for name, n in (
                ("errored", self.errored),
                ("expired", self.expired),
                ("canceled", self.canceled),
                ("missing", self.missing),
            )
            if n
        ]
        if failed:
            parts.append(", ".join(failed) + " (resubmitted by the next generate)")
        if self.unexpected:
            parts.append(f"{self.unexpected} results for unknown custom ids ignored")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate results ignored (the first one counted)")
        if self.batches_running:
            parts.append(f"{self.batches_running} batch(es) still running")
        return "; ".join(parts)

    def warning(self) -> str | None:
        """One line about results for custom ids never submitted in their batch, or None. Such
        a result matches no request, so nothing of it was cached or given to any task."""
        if not self.unexpected:
            return None
        where = ", ".join(f"{n} in batch {i}" for i, n in self.unexpected_by_batch.items())
        return (
            f"ignored {self.unexpected} result(s) for custom ids never submitted in their batch "
            f"({where}); nothing of them was cached or given to a task. If it happens again, "
            "report it to the provider with the batch id"
        )

    def add(self, other: CollectSummary) -> None:
        for name in (
            "batches_collected",
            "batches_running",
            "succeeded",
            "already_cached",
            "errored",
            "expired",
            "canceled",
            "missing",
            "unexpected",
            "duplicates",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd += other.cost_usd
        self.error_samples.extend(other.error_samples[: 5 - len(self.error_samples)])
        for batch_id, n in other.unexpected_by_batch.items():
            self.unexpected_by_batch[batch_id] = self.unexpected_by_batch.get(batch_id, 0) + n

    def counts(self) -> BatchCounts:
        return BatchCounts(
            **{name: getattr(self, name) for name in BatchCounts.model_fields},
        )


def batch_line_bytes(line: dict[str, Any]) -> bytes:
    """A request line as it is uploaded (OpenAI) and as it is measured against byte limits.
    ASCII-escaped JSON is never shorter than the UTF-8 form a provider SDK may send, so the
    measure is an upper bound for Anthropic's request body too."""
    return json.dumps(line).encode() + b"\n"


# -- the record: DIR/batches.jsonl --------------------------------------------------------------


class _Ledger:
    """The run's batches, folded from batches.jsonl (append-only; later lines win)."""

    def __init__(self, rundir: RunDir):
        self.rundir = rundir
        self.records: dict[str, dict[str, Any]] = {}
        for line in rundir.read_jsonl(BATCHES):
            self._merge(line)

    def _merge(self, line: dict[str, Any]) -> None:
        record = self.records.setdefault(line["id"], {})
        record.update({k: v for k, v in line.items() if k != "event"})

    def write(self, event: str, fields: dict[str, Any]) -> None:
        line = {"event": event, **fields}
        self.rundir.append(BATCHES, line)
        self._merge(line)

    def batch_ids(self) -> list[str]:
        """The provider batches (not the submission records)."""
        return [i for i, r in self.records.items() if "submission_record" not in r]

    def unresolved(self) -> list[str]:
        """Submission records whose batch creation never reported back (the process died)."""
        return [
            i
            for i, r in self.records.items()
            if "submission_record" in r and r.get("status") == "submitting"
        ]

    def in_flight(self) -> set[str]:
        """Custom ids of every batch not yet collected, and of submissions not resolved."""
        ids: set[str] = set()
        for record in self.records.values():
            if not record.get("collected"):
                ids.update(record.get("requests", {}))
        return ids

    def info(self, batch_id: str) -> BatchInfo:
        record = self.records[batch_id]
        known = {name: record[name] for name in BatchInfo.model_fields if name in record}
        known["requests"] = len(record.get("requests", {}))
        return BatchInfo.model_validate(known)

    def update(self, info: BatchInfo) -> BatchInfo:
        """Record what the provider said now, if anything changed."""
        fresh = _provider_fields(info)
        record = self.records[info.id]
        changed = {k: v for k, v in fresh.items() if record.get(k) != v}
        if changed:
            self.write("updated", {"id": info.id, **changed})
        return self.info(info.id)


def _provider_fields(info: BatchInfo) -> dict[str, Any]:
    return info.model_dump(
        mode="json",
        include={
            "status",
            "ended",
            "request_counts",
            "output_file_id",
            "error_file_id",
            "results_url",
            "errors",
        },
    )


# -- submitting ---------------------------------------------------------------------------------


class BatchQueue:
    """Requests deferred during a run, submitted as provider batches when the run has walked
    every task as far as it can."""

    def __init__(self, rundir: RunDir, backend: Backend) -> None:
        if getattr(backend, "provider", None) not in BATCH_PROVIDERS or not hasattr(
            backend, "batch_create"
        ):
            raise ConfigError("--batch needs --provider openai or anthropic")
        self.rundir = rundir
        self.backend: BatchBackend = backend  # type: ignore[assignment]
        self._ledger = _Ledger(rundir)
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
            "base_url": safe_url(getattr(self.backend, "base_url", None)),
        }
        self._ledger.write(
            "submitting",
            {
                "id": record_id,
                "submission_record": True,
                "submission": submission,
                **where,
                "status": "submitting",
                "created_at": _now(),
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
                unanswered = exc.kind in ("timeout", "connection", "malformed")
                raise

        try:
            info = await _call(create, retryable=_CREATE_RETRYABLE)
        except Exception:
            if not unanswered:  # the provider said no: there is nothing to find later
                self._ledger.write("not-submitted", _resolved(record_id, "not-submitted"))
            # else the record stays open for `batch status`/`collect` to find or give back
            raise
        self._ledger.write(
            "created",
            {
                "id": info.id,
                "submission": submission,
                **where,
                "created_at": info.created_at or _now(),
                **_provider_fields(info),
                "requests": requests,
                "collected": False,
            },
        )
        self._ledger.write("submitted", _resolved(record_id, "submitted", info.id))
        return self._ledger.info(info.id)


def _resolved(record_id: str, status: str, batch_id: str | None = None) -> dict[str, Any]:
    return {"id": record_id, "status": status, "collected": True, "batch": batch_id}


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


# -- status, collect, cancel --------------------------------------------------------------------


async def settle(run_dir: Path | RunDir, *, base_url: str | None = None) -> list[str]:
    """Settle submissions cut short by a dead process (see `_Session.resolve_submissions`);
    a line for the user about each. status, collect and cancel settle them too, silently."""
    async with _Session(run_dir, base_url) as session:
        return await session.resolve_submissions()


async def status(run_dir: Path | RunDir, *, base_url: str | None = None) -> list[BatchInfo]:
    """Every batch of the run, those still running refreshed from the provider."""
    async with _Session(run_dir, base_url) as session:
        return await session.refresh()


async def collect(
    run_dir: Path | RunDir,
    *,
    base_url: str | None = None,
    prices_file: Path | None = None,
) -> CollectSummary:
    """Download the results of every ended batch not yet collected into cache.jsonl.

    Each succeeded result whose custom_id (the cache key) is not cached yet is parsed by the
    backend and written with its batch-discounted cost; errored, expired, canceled and missing
    ones are counted and left for the next run to defer again. Idempotent: a collected batch
    is never read again, and a key already cached is never written twice, even if a collect
    was cut short.
    """
    async with _Session(run_dir, base_url) as session:
        infos = await session.refresh()
        summary = CollectSummary()
        cached = {line["key"] for line in session.rundir.read_jsonl(CACHE)}
        prices = load_prices(prices_file)
        for info in infos:
            if info.collected:
                continue
            if not info.ended:
                summary.batches_running += 1
                continue
            summary.add(await session.collect_one(info, cached, prices))
        if summary.batches_collected:
            _update_manifest(session.rundir)
        return summary


def batch_totals(rundir: RunDir) -> BatchTotals | None:
    """The run's batches and what collecting them found; None for a run without batches."""
    ledger = _Ledger(rundir)
    infos = [ledger.info(batch_id) for batch_id in ledger.batch_ids()]
    if not infos:
        return None
    results = BatchCounts()
    for info in infos:
        if info.summary is not None:
            results += info.summary
    return BatchTotals(
        batches=len(infos), collected=sum(info.collected for info in infos), results=results
    )


def manifest_section(rundir: RunDir) -> dict[str, Any] | None:
    """The manifest's `batch` section (see BatchTotals), or None for a run without batches."""
    totals = batch_totals(rundir)
    return totals.model_dump(mode="json") if totals is not None else None


def _update_manifest(rundir: RunDir) -> None:
    """Bring the manifest's `batch` section up to date after a collect, so the counts are
    there before the next `generate` rewrites the manifest (which refreshes it too)."""
    manifest = rundir.read_manifest()
    if manifest is not None:
        manifest["batch"] = manifest_section(rundir)
        rundir.write_manifest(manifest)


async def cancel(run_dir: Path | RunDir, *, base_url: str | None = None) -> list[BatchInfo]:
    """Ask the provider to cancel every batch still running. Whatever finished before the
    cancellation is still collected (and paid for); the rest is resubmitted by the next run."""
    async with _Session(run_dir, base_url) as session:
        infos = await session.refresh()
        result: list[BatchInfo] = []
        for info in infos:
            if info.ended or info.collected:
                result.append(info)
                continue
            backend = session.backend(info.id)
            fresh = await _call(lambda b=backend, i=info.id: b.batch_cancel(i))
            result.append(session.ledger.update(fresh))
        return result


class _Session:
    """An opened run directory, its ledger, and backends rebuilt from the batch records."""

    def __init__(self, run_dir: Path | RunDir, base_url: str | None):
        self._given = run_dir if isinstance(run_dir, RunDir) else None
        self._path = run_dir.path if isinstance(run_dir, RunDir) else Path(run_dir)
        self._base_url = base_url
        self._backends: dict[tuple[str, str, str | None], BatchBackend] = {}
        self.rundir: RunDir = self._given or RunDir(self._path)
        self.ledger: _Ledger

    async def __aenter__(self) -> _Session:
        if self._given is None:
            if not self._path.is_dir():
                raise ConfigError(f"{self._path}: no such run directory")
            self.rundir.open()
        try:
            self.ledger = _Ledger(self.rundir)
        except Exception:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
        if self._given is None:
            self.rundir.close()

    def backend(self, batch_id: str) -> BatchBackend:
        record = self.ledger.records[batch_id]
        base_url: str | None
        if self._base_url is not None:
            base_url = self._base_url
        elif "base_url" in record:
            base_url = record["base_url"]
        else:
            base_url = (self.rundir.read_manifest() or {}).get("base_url")
        key = (record["provider"], record["model"], base_url)
        if key not in self._backends:
            backend = create_backend(
                BackendConfig(provider=record["provider"], model=record["model"], base_url=base_url)
            )
            self._backends[key] = backend  # type: ignore[assignment]
        return self._backends[key]

    async def resolve_submissions(self) -> list[str]:
        """Settle submissions whose process died before recording the batch: adopt the batch
        the provider holds under the submission's tag, or give the requests back to the run
        (the next `generate` sends them again). Returns a line for each, for the user."""
        notes: list[str] = []
        for record_id in self.ledger.unresolved():
            record = self.ledger.records[record_id]
            backend = self.backend(record_id)
            found = await _call(
                lambda b=backend, r=record: b.batch_find(r["submission"], r["created_at"])
            )
            requests = record.get("requests", {})
            if found is not None:
                self.ledger.write(
                    "adopted",
                    {
                        "id": found.id,
                        "submission": record["submission"],
                        **{k: record[k] for k in ("provider", "model", "base_url")},
                        "created_at": found.created_at or record["created_at"],
                        **_provider_fields(found),
                        "requests": requests,
                        "collected": False,
                    },
                )
                self.ledger.write("adopted", _resolved(record_id, "adopted", found.id))
                notes.append(
                    f"found batch {found.id}, created when an earlier run was cut short, "
                    f"with {len(requests)} requests: it is followed like the others"
                )
                continue
            self.ledger.write("lost", _resolved(record_id, "lost"))
            notes.append(
                f"a batch submission of {len(requests)} requests from {record['created_at']} "
                "was cut short and the provider holds no batch found for it"
                + (
                    ""
                    if record["provider"] == "openai"
                    else " (Anthropic batches carry no tag to find them by: if the console "
                    "shows an unknown batch from then, cancel it)"
                )
                + "; the next `generate` sends those requests again"
            )
        return notes

    async def refresh(self) -> list[BatchInfo]:
        await self.resolve_submissions()
        infos: list[BatchInfo] = []
        for batch_id in self.ledger.batch_ids():
            info = self.ledger.info(batch_id)
            if not info.ended and not info.collected:
                backend = self.backend(batch_id)
                info = self.ledger.update(await _call(lambda b=backend, i=batch_id: b.batch_get(i)))
            infos.append(info)
        return infos

    async def collect_one(self, info: BatchInfo, cached: set[str], prices: Any) -> CollectSummary:
        record = self.ledger.records[info.id]
        requests: dict[str, dict[str, str]] = record.get("requests", {})
        backend = self.backend(info.id)
        price: Price | None = prices.lookup(
            record["model"], record["provider"], record.get("base_url") is not None
        )
        written: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            summary = CollectSummary(batches_collected=1)
            seen: set[str] = set()
            try:
                async for result in backend.batch_results(info):
                    self._one(result, requests, backend, price, cached, written, seen, summary)
                break
            except TransientError as exc:
                # Whatever was cached before the cut is kept and not written again.
                if attempt >= MAX_ATTEMPTS:
                    raise BackendError(f"{exc} (after {attempt} attempts)") from None
                await asyncio.sleep(_backoff(attempt, exc.retry_after))
            except PermanentError as exc:
                if not exc.not_found:
                    raise _backend_error(exc) from None
                # The provider no longer keeps the results (OpenAI deletes files after about
                # 30 days; Anthropic keeps results 29 days): what was read is kept, the rest
                # counts as missing and is asked again by the next run.
                summary.error_samples.append(
                    f"batch {info.id}: its results are no longer available ({exc}); what they "
                    "held is asked again by the next run"
                )
                break
        summary.missing = sum(1 for key in requests if key not in seen)
        if summary.unexpected:
            summary.unexpected_by_batch[info.id] = summary.unexpected
        for error in info.errors:  # why a batch that failed validation has no results
            if len(summary.error_samples) < 5:
                summary.error_samples.append(f"batch {info.id} {info.status}: {error}")
        self.ledger.write(
            "collected",
            {
                "id": info.id,
                "collected": True,
                "collected_at": _now(),
                "summary": summary.counts().model_dump(),
            },
        )
        return summary

    def _one(
        self,
        result: BatchResult,
        requests: dict[str, dict[str, str]],
        backend: BatchBackend,
        price: Price | None,
        cached: set[str],
        written: set[str],
        seen: set[str],
        summary: CollectSummary,
    ) -> None:
        # A result belongs to the request with its custom_id, never to the one at its position:
        # custom_id is what both providers document for matching; the order is not promised.
        key = result.custom_id
        if key not in requests:  # not submitted in this batch: no task to give it to
            summary.unexpected += 1
            return
        if key in seen:  # a duplicate line: the first one counted
            summary.duplicates += 1
            return
        seen.add(key)
        if result.outcome != "succeeded" or result.body is None:
            setattr(summary, result.outcome, getattr(summary, result.outcome) + 1)
            if result.error and len(summary.error_samples) < 5:
                summary.error_samples.append(f"{key}: {result.error}")
            return
        if key in written:  # written by an earlier attempt of this collect
            summary.succeeded += 1
            return
        if key in cached:
            summary.already_cached += 1
            return
        try:
            completion = backend.parse_batch_result(result.body)
        except (TransientError, PermanentError) as exc:
            # Paid for but unusable (e.g. empty): like a failed synchronous call, not cached,
            # so the next run asks again.
            summary.errored += 1
            if len(summary.error_samples) < 5:
                summary.error_samples.append(f"{key}: {exc}")
            return
        cost = price.usage_cost(completion, batch=True) if price is not None else 0.0
        list_cost = price.list_cost(completion) if price is not None else 0.0
        request = requests[key]
        # The same line ResponseCache.put writes.
        self.rundir.append(
            CACHE,
            {
                "key": key,
                "task_id": request["task_id"],
                "step": request["step"],
                "cost_usd": cost,
                "list_cost_usd": list_cost,
                "completion": completion.model_dump(mode="json"),
            },
        )
        cached.add(key)
        written.add(key)
        summary.succeeded += 1
        summary.cost_usd += cost


# -- helpers ------------------------------------------------------------------------------------


async def _call(make: Any, retryable: set[str] | None = None) -> Any:
    """Await `make()`, retrying transient provider errors (all kinds, or only `retryable`),
    with exponential backoff and jitter; provider errors end as BackendError/ConfigError."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await make()
        except TransientError as exc:
            if attempt >= MAX_ATTEMPTS or (retryable is not None and exc.kind not in retryable):
                raise BackendError(
                    f"{exc} (after {attempt} attempt{'s' if attempt > 1 else ''})"
                ) from None
            await asyncio.sleep(_backoff(attempt, exc.retry_after))
        except PermanentError as exc:
            raise _backend_error(exc) from None


def _backend_error(exc: PermanentError) -> Exception:
    # A refused key is something the user fixes (exit 2); anything else is the provider's.
    return ConfigError(str(exc)) if exc.fatal else BackendError(str(exc))


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, 0.25)
    return min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), 30.0) * random.uniform(0.5, 1.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
