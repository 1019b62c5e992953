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

Submitted batches are recorded in DIR/batches.jsonl (generator/batch_ledger.py); deferring and
submitting live in generator/batch_queue.py; this module follows, collects and cancels them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from generator import retry
from generator.backends.base import (
    BackendConfig,
    BatchBackend,
    BatchCounts,
    BatchInfo,
    BatchResult,
)
from generator.backends.registry import create_backend
from generator.batch_ledger import Ledger, now, provider_fields, resolved, update_manifest
from generator.errors import ConfigError, NotFound, PermanentError, TransientError
from generator.pricing import Price, load_prices
from generator.rundir import CacheLine, RunDir


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
        cached = {line.key for line in session.rundir.cache_lines()}
        prices = load_prices(prices_file)
        for info in infos:
            if info.collected:
                continue
            if not info.ended:
                summary.batches_running += 1
                continue
            summary.add(await session.collect_one(info, cached, prices))
        if summary.batches_collected:
            update_manifest(session.rundir)
        return summary


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
            fresh = await retry.call_provider(partial(backend.batch_cancel, info.id))
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
        self.ledger: Ledger

    async def __aenter__(self) -> _Session:
        if self._given is None:
            if not self._path.is_dir():
                raise ConfigError(f"{self._path}: no such run directory")
            self.rundir.open()
        try:
            self.ledger = Ledger(self.rundir)
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
            manifest = self.rundir.read_manifest()
            base_url = manifest.base_url if manifest is not None else None
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
            found = await retry.call_provider(
                partial(backend.batch_find, record["submission"], record["created_at"])
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
                        **provider_fields(found),
                        "requests": requests,
                        "collected": False,
                    },
                )
                self.ledger.write("adopted", resolved(record_id, "adopted", found.id))
                notes.append(
                    f"found batch {found.id}, created when an earlier run was cut short, "
                    f"with {len(requests)} requests: it is followed like the others"
                )
                continue
            self.ledger.write("lost", resolved(record_id, "lost"))
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
                info = self.ledger.update(
                    await retry.call_provider(partial(backend.batch_get, batch_id))
                )
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
        summary = CollectSummary(batches_collected=1)
        seen: set[str] = set()
        # The results are read again from the start after a transient fault; whatever was
        # cached before the cut is kept and not written again (`written`).
        retrying = retry.BATCH_POLICY.retrying(sleep=asyncio.sleep)
        try:
            async for attempt in retrying:
                with attempt:
                    summary = CollectSummary(batches_collected=1)
                    seen = set()
                    async for result in backend.batch_results(info):
                        self._one(result, requests, backend, price, cached, written, seen, summary)
        except TransientError as exc:
            raise retry.gave_up(exc, retrying.statistics.get("attempt_number", 1)) from None
        except NotFound as exc:
            # The provider no longer keeps the results (OpenAI deletes files after about
            # 30 days; Anthropic keeps results 29 days): what was read is kept, the rest
            # counts as missing and is asked again by the next run.
            summary.error_samples.append(
                f"batch {info.id}: its results are no longer available ({exc}); what they "
                "held is asked again by the next run"
            )
        except PermanentError as exc:
            raise retry.final_error(exc) from None
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
                "collected_at": now(),
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
        self.rundir.append_cache(
            CacheLine(
                key=key,
                task_id=request["task_id"],
                step=request["step"],
                cost_usd=cost,
                list_cost_usd=list_cost,
                completion=completion,
            )
        )
        cached.add(key)
        written.add(key)
        summary.succeeded += 1
        summary.cost_usd += cost
